package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble"
	"go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/synod-db/synod/alarm"
	"github.com/synod-db/synod/mvcc"
)

// ErrDataDirExists is returned by RestoreSnapshot when the target data
// directory already exists: a restore never overwrites data.
var ErrDataDirExists = errors.New("server: data directory exists")

// RestoreOptions are etcdutl's snapshot restore options beyond the member
// configuration.
type RestoreOptions struct {
	// SkipHashCheck accepts a file without its sha256 trailer (a raft
	// snapshot copied out of a data directory).
	SkipHashCheck bool
	// BumpRevision is added to the restored revision.
	BumpRevision int64
	// MarkCompacted makes the restored revision the compaction revision.
	MarkCompacted bool
}

// RestoreResult describes a restored data directory.
type RestoreResult struct {
	// MemberID and ClusterID are the new member's and cluster's IDs.
	MemberID, ClusterID uint64
	// Rev and CompactRev are the restored current and compaction revisions.
	Rev, CompactRev int64
	// Members is the size of the new membership.
	Members int
}

// RestoreSnapshot creates cfg.DataDir for a member of a NEW cluster from a
// snapshot file written by `etcdctl snapshot save` (or `synod` itself): the
// same keys, versions and revisions; the membership and IDs come from cfg's
// --name, --initial-cluster, --initial-cluster-token and
// --initial-advertise-peer-urls, as etcdutl's restore; the old membership
// and the old cluster's alarms (they name old members) are dropped. The file
// is verified (sha256 and snapshot checksum) before anything is created; on
// any failure the new directory is removed. `synod serve` with that data
// directory then starts the new cluster.
func RestoreSnapshot(cfg Config, path string, opts RestoreOptions) (RestoreResult, error) {
	if err := cfg.Validate(); err != nil {
		return RestoreResult{}, err
	}
	if opts.BumpRevision < 0 || (opts.MarkCompacted && opts.BumpRevision == 0) || (!opts.MarkCompacted && opts.BumpRevision > 0) {
		return RestoreResult{}, fmt.Errorf("%w: --mark-compacted is required with --bump-revision > 0 and allowed only with it", ErrConfig)
	}
	f, err := cfg.founders()
	if err != nil {
		return RestoreResult{}, err
	}
	if _, err := os.Stat(cfg.DataDir); err == nil {
		return RestoreResult{}, fmt.Errorf("%w: %s", ErrDataDirExists, cfg.DataDir)
	}
	if _, err := mvcc.VerifyBackup(path, opts.SkipHashCheck); err != nil {
		return RestoreResult{}, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return RestoreResult{}, fmt.Errorf("server: create data dir: %w", err)
	}
	res, err := restoreInto(filepath.Join(cfg.DataDir, "db"), path, opts, f)
	if err != nil {
		_ = os.RemoveAll(cfg.DataDir)
		return RestoreResult{}, err
	}
	return res, nil
}

// restoreInto imports the snapshot into a new database at dir and writes the
// new membership and this member's identity.
func restoreInto(dir, path string, opts RestoreOptions, f founding) (res RestoreResult, err error) {
	db, err := openPebble(dir)
	if err != nil {
		return RestoreResult{}, fmt.Errorf("server: open database: %w", err)
	}
	defer func() {
		if cerr := db.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("server: close database: %w", cerr)
		}
	}()
	keep := func(k []byte) bool { return k[0] != membersPrefix && k[0] != alarm.Prefix }
	im, err := mvcc.ImportBackup(db, path, mvcc.ImportOptions{
		SkipHashCheck: opts.SkipHashCheck, BumpRevision: opts.BumpRevision, MarkCompacted: opts.MarkCompacted, Keep: keep,
	})
	if err != nil {
		return RestoreResult{}, err
	}
	ms := &members{byID: map[uint64]*etcdserverpb.Member{}}
	b := db.NewBatch()
	defer b.Close()
	for _, mem := range f.members {
		if err := ms.put(b, mem); err != nil {
			return RestoreResult{}, err
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return RestoreResult{}, fmt.Errorf("server: write membership: %w", err)
	}
	if err := writeIdentity(db, identity{memberID: f.self, clusterID: f.clusterID}); err != nil {
		return RestoreResult{}, err
	}
	return RestoreResult{MemberID: f.self, ClusterID: f.clusterID, Rev: im.Rev, CompactRev: im.CompactRev, Members: len(f.members)}, nil
}
