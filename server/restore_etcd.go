package server

import (
	"crypto/sha256"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/synod-db/synod/auth"
	"github.com/synod-db/synod/etcdsnap"
	"github.com/synod-db/synod/lease"
	"github.com/synod-db/synod/mvcc"
)

// etcdImport restores a snapshot file in etcd's format (package etcdsnap),
// as `etcdutl snapshot restore` does: the history with its revisions and
// compaction revision (the scheduled one, which etcd completes when it
// starts), the leases with their granted TTLs, users, roles, whether auth is
// on and the auth revision. Membership comes from the restore flags;
// etcd's alarms name members of the old cluster and are dropped, as synod's
// own restore drops them.
type etcdImport struct {
	sn   *etcdsnap.Snapshot
	meta etcdsnap.Meta
	opts RestoreOptions
}

// openEtcdImport verifies the file and reads its meta bucket.
func openEtcdImport(path string, opts RestoreOptions) (*etcdImport, error) {
	sn, err := etcdsnap.Open(path, opts.SkipHashCheck)
	if err != nil {
		return nil, err
	}
	meta, err := sn.Meta()
	if err != nil {
		_ = sn.Close()
		return nil, err
	}
	return &etcdImport{sn: sn, meta: meta, opts: opts}, nil
}

func (e *etcdImport) close() { _ = e.sn.Close() }

func (e *etcdImport) importInto(db *pebble.DB, applied uint64) (mvcc.ImportResult, error) {
	ei, err := mvcc.NewEtcdImport(db)
	if err != nil {
		return mvcc.ImportResult{}, err
	}
	defer ei.Close()
	err = e.sn.ForEachRevision(func(r etcdsnap.Revision, kv *mvccpb.KeyValue) error {
		return ei.Add(r.Main, r.Sub, r.Tombstone, kv)
	})
	if err != nil {
		return mvcc.ImportResult{}, err
	}
	res, err := ei.Finish(e.meta.CompactRev(), mvcc.ImportOptions{
		BumpRevision: e.opts.BumpRevision, MarkCompacted: e.opts.MarkCompacted, Applied: applied, AppliedTerm: restoredTerm,
	})
	if err != nil {
		return mvcc.ImportResult{}, err
	}
	b := db.NewBatch()
	defer b.Close()
	if err := e.leasesAndAuth(b); err != nil {
		return mvcc.ImportResult{}, err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return mvcc.ImportResult{}, fmt.Errorf("server: write leases and auth: %w", err)
	}
	return res, nil
}

// leasesAndAuth adds the leases and the auth state to b. A lease restarts
// with its whole granted TTL, as in etcd (its renewal index is 0: nothing
// of the new cluster's log renewed it). The token signing key of an
// auth-enabled snapshot is derived from the file's sha256, so that every
// member restored from the same file holds the same key.
func (e *etcdImport) leasesAndAuth(b *pebble.Batch) error {
	ls, err := e.sn.Leases()
	if err != nil {
		return err
	}
	var c lease.Change
	for _, l := range ls {
		if l.ID == 0 {
			return fmt.Errorf("%w: lease with ID 0", etcdsnap.ErrCorrupt)
		}
		c.Put = append(c.Put, lease.Record{ID: l.ID, TTL: l.TTL})
	}
	if err := c.Write(b); err != nil {
		return err
	}
	a, err := e.sn.Auth()
	if err != nil {
		return err
	}
	key := sha256.Sum256(append([]byte("synod auth token key from etcd snapshot "), e.sn.Sum()...))
	return auth.WriteState(b, auth.State{Enabled: a.Enabled, Revision: a.Revision, Users: a.Users, Roles: a.Roles}, key[:])
}
