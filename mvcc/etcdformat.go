package mvcc

import (
	"bytes"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// The history in etcd's snapshot format (package etcdsnap): what etcd's
// key bucket holds for the same history, exported from a Snapshot and
// imported into a new store.

// Revisions returns the current and compaction revisions the snapshot was
// taken at (compaction -1 if none).
func (sn *Snapshot) Revisions() (rev, compactRev int64, err error) {
	if rev, err = readMetaInt(sn.snap, metaRev, 1); err != nil {
		return 0, 0, err
	}
	compactRev, err = readMetaInt(sn.snap, metaCompact, -1)
	return rev, compactRev, err
}

// EtcdRecords calls fn with the records etcd's key bucket holds for this
// snapshot's history once its compaction has finished, in etcd's order
// (revision order): every key's newest version <= the compaction revision
// if it is a put, then every change after the compaction revision. A key is
// main(8 BE) '_' sub(8 BE) (and 't' for a deletion), a value a marshaled
// mvccpb.KeyValue (KeyValue{Key} for a deletion). The result does not
// depend on how far physical compaction has got. It returns the
// snapshot's revisions. Memory: one entry per key with a version <= the
// compaction revision, as HashKV.
func (sn *Snapshot) EtcdRecords(fn func(k, v []byte) error) (rev, compactRev int64, err error) {
	if rev, compactRev, err = sn.Revisions(); err != nil {
		return 0, 0, err
	}
	if err := etcdKept(sn.snap, rev, compactRev, false, fn); err != nil {
		return 0, 0, err
	}
	return rev, compactRev, etcdChanges(sn.snap, rev, compactRev, fn)
}

// NewIter iterates the snapshot's keys >= 0x20 (membership, alarms, leases,
// auth: what their packages' Load functions read); the bounds are clamped
// to that range.
func (sn *Snapshot) NewIter(o *pebble.IterOptions) (*pebble.Iterator, error) {
	c := pebble.IterOptions{LowerBound: []byte{prefixOthers}}
	if o != nil {
		c.UpperBound = o.UpperBound
		if bytes.Compare(o.LowerBound, c.LowerBound) > 0 {
			c.LowerBound = o.LowerBound
		}
	}
	return sn.snap.NewIter(&c)
}

// EtcdImport writes the history held in an etcd snapshot's key bucket into
// an empty store, to bootstrap a new cluster (as ImportBackup does for
// synod's own format): each change becomes a version and a revision-log
// entry, written in bounded batches. After Finish, the store's compactor
// completes the compaction when the store opens (trimming the revision log
// below the compaction revision, and deleting what an unfinished etcd
// compaction left).
type EtcdImport struct {
	im        importer
	main, sub int64 // the last change added
	top       int64 // the highest revision seen
}

// NewEtcdImport starts an import into db, which must hold no state
// (ErrNotEmpty).
func NewEtcdImport(db *pebble.DB) (*EtcdImport, error) {
	if err := checkEmpty(db); err != nil {
		return nil, err
	}
	return &EtcdImport{im: importer{db: db, b: db.NewBatch()}}, nil
}

// Close releases the import's batch; what Finish did not commit is lost.
func (e *EtcdImport) Close() error { return e.im.b.Close() }

// Add adds etcd's record of change sub of revision main: a put of kv, or,
// with tombstone, the deletion of kv.Key. Changes must come in revision
// order. A record with no key and no tombstone (etcdutl's --bump-revision
// marker) only raises the revision. Anything inconsistent is a wrapped
// record.ErrCorrupt.
func (e *EtcdImport) Add(main, sub int64, tombstone bool, kv *mvccpb.KeyValue) error {
	if main < 1 || sub < 0 || main < e.main || (main == e.main && sub <= e.sub && e.top > 0) {
		return corruptf("etcd revision %d/%d out of order (after %d/%d)", main, sub, e.main, e.sub)
	}
	e.main, e.sub, e.top = main, sub, main
	if len(kv.Key) == 0 {
		if tombstone {
			return corruptf("etcd deletion at %d/%d has no key", main, sub)
		}
		return nil
	}
	tag, put := tagTombstone, (*mvccpb.KeyValue)(nil)
	if !tombstone {
		if kv.ModRevision != main || kv.CreateRevision < 1 || kv.CreateRevision > main || kv.Version < 1 {
			return corruptf("etcd record %d/%d of %q: mod %d, create %d, version %d", main, sub, kv.Key,
				kv.ModRevision, kv.CreateRevision, kv.Version)
		}
		tag, put = tagPut, kv
	}
	if err := setVersion(e.im.b, versionKey(kv.Key, main), tag, sub, put); err != nil {
		return err
	}
	lk := logKey(main, sub)
	if err := e.im.b.Set(lk, seal(lk, append([]byte{tag}, kv.Key...)), nil); err != nil {
		return err
	}
	e.im.res.Keys++
	return e.im.flush()
}

// Finish records the revisions and commits, synced. compactRev is the
// compaction revision etcd would serve (-1 if none); the current revision
// is the highest of the last change, compactRev and 1, as etcd computes it
// when it starts; opts' BumpRevision, MarkCompacted and Applied apply on
// top (SkipHashCheck and Keep are the caller's).
func (e *EtcdImport) Finish(compactRev int64, opts ImportOptions) (ImportResult, error) {
	if opts.BumpRevision < 0 {
		return ImportResult{}, fmt.Errorf("mvcc: import: negative revision bump %d", opts.BumpRevision)
	}
	e.im.opts = opts
	e.im.res.Rev, e.im.res.CompactRev = max(e.top, compactRev, 1), compactRev
	return e.im.finish()
}
