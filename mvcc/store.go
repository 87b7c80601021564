package mvcc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/synod-db/synod/record"
)

// ErrClosed is returned by every method of a Store after Close.
var ErrClosed = errors.New("mvcc: store closed")

// Options configures a Store.
type Options struct {
	// LeaseExists reports whether a lease ID exists; nil means no lease
	// exists. A put with a non-zero lease that does not exist fails with
	// ErrLeaseNotFound.
	LeaseExists func(id int64) bool
	// ObserveCommit, if set, is called with the duration of every commit of
	// an apply batch (etcd_disk_backend_commit_duration_seconds). It runs on
	// the raft loop and must be cheap.
	ObserveCommit func(time.Duration)
	// CompactionBatch bounds how many keys one background compaction batch
	// deletes (default 10000).
	CompactionBatch int
	// CompactHashes makes every compaction record its KeyValueHash
	// (CompactHashes, HashByRev) for etcd's compaction hash check, at the
	// cost of hashing the history up to the compaction revision once per
	// compaction, in the background.
	CompactHashes bool
	// FS and IngestDir are where ReceiveSnapshot writes the sstables a
	// Restore ingests, one directory per received snapshot: a directory on
	// the database's filesystem (nil FS: the OS's), which Pebble opens the
	// tables through and hard-links them from, so it belongs next to the
	// database. The store creates it; Open removes what a crash left in it
	// (receive.go, removeLeftovers). Without IngestDir, ReceiveSnapshot and
	// Restore fail with ErrNoIngestDir before they change anything.
	FS        vfs.FS
	IngestDir string

	// hooks lets tests interrupt background compaction and restore.
	hooks *testHooks
}

// testHooks are failure/pause points for tests; nil in production.
type testHooks struct {
	// beforeCompactCommit runs before each physical compaction batch is
	// committed; an error aborts the pass without committing it.
	beforeCompactCommit func(batch int) error
	// restoreStep runs after each step of a restore (stepTablesWritten,
	// stepIngested); an error aborts the restore there (as a crash would).
	restoreStep func(step string) error
	// restoreTableBytes overrides the restore table size when > 0.
	restoreTableBytes int
	// reclaimed runs after each Reclaim of the background compactor.
	reclaimed func()
}

// defaultCompactionBatch is the default of Options.CompactionBatch.
const defaultCompactionBatch = 10000

// Store is the revisioned keyspace of one member: the keyspace of the raft
// state machine (package statemachine). NewGroup (and Apply, ApplyWith,
// ApplyOther, groups of one), NewSnapshot and Restore are for the raft loop
// (serial); the read methods are safe to call concurrently with them.
type Store struct {
	db   *pebble.DB
	opts Options

	// mu is held for writing by Restore (which swaps the whole keyspace) and
	// Close, and for reading while a read view is taken.
	mu     sync.RWMutex
	closed bool
	failed error // set when a Restore failed half way: nothing may be served

	rev        atomic.Int64 // current revision
	compactRev atomic.Int64 // scheduled (logical) compaction revision; -1: none
	applied    atomic.Pointer[appliedState]

	gens genCache // owned by the apply path (see genCache)

	// openSnaps counts the pebble snapshots the store holds open (read
	// views, Snapshots, a compaction hash job): a restore excises the old
	// state only when there are none (clearState).
	openSnaps atomic.Int64

	// leaseIdx is whether the lease index is complete (leaseindex.go):
	// while it is, every apply batch records it complete at its index.
	leaseIdx atomic.Bool

	// prefixSeek is whether db orders with Comparer, so that single-key
	// reads may use SeekPrefixGE and the bloom filters (hasPrefixSeek).
	prefixSeek bool

	// recvMu orders the publication of a received snapshot with the
	// removal of those installed or superseded (receive.go); recvSeq
	// names the directory of each receipt in progress.
	recvMu  sync.Mutex
	recvSeq atomic.Uint64

	compactor
}

type appliedState struct{ index, term uint64 }

// Open loads the store kept in db: it finishes an interrupted Restore first,
// loads applied index/term, the current and compaction revisions, and
// resumes an unfinished physical compaction in the background. A new DB is
// at revision 1 with no keys, compaction revision -1 (as etcd) and applied
// (0, 0). The caller keeps ownership of db and must Close the Store first.
func Open(db *pebble.DB, opts Options) (*Store, error) {
	if opts.CompactionBatch <= 0 {
		opts.CompactionBatch = defaultCompactionBatch
	}
	s := &Store{db: db, opts: opts, prefixSeek: hasPrefixSeek(db)}
	s.compactor.init()
	if err := s.finishRestore(); err != nil {
		return nil, err
	}
	if err := s.loadMeta(); err != nil {
		return nil, err
	}
	if opts.IngestDir != "" {
		if err := s.removeLeftovers(); err != nil {
			return nil, err
		}
	}
	s.startCompactor()
	return s, nil
}

// Close stops background work. It does not close the DB. Idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	already := s.closed
	s.closed = true
	s.mu.Unlock()
	if !already {
		s.stopCompactor()
		s.dropCompactHashes()
	}
	return nil
}

// Rev returns the current revision.
func (s *Store) Rev() int64 { return s.rev.Load() }

// CompactRev returns the compaction revision (-1 if the store was never
// compacted). Reads below it fail with ErrCompacted; physical deletion may
// still be in progress.
func (s *Store) CompactRev() int64 { return s.compactRev.Load() }

// Applied returns the last raft entry applied ((0, 0) for a new store).
func (s *Store) Applied() (index, term uint64) {
	a := s.applied.Load()
	return a.index, a.term
}

// usable reports ErrClosed or the failure of a half-done Restore.
func (s *Store) usable() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.usableLocked()
}

func (s *Store) usableLocked() error {
	if s.closed {
		return ErrClosed
	}
	return s.failed
}

// readView is a consistent point-in-time view for concurrent readers.
type readView struct {
	s          *Store
	snap       *pebble.Snapshot
	rev        int64
	compactRev int64
}

// acquire takes a read view. The compaction revision is loaded before the
// revision (so compactRev <= rev) and again after the snapshot: if it did not
// move, no physical deletion beyond it can be in the snapshot, so every read
// at >= compactRev is exact.
func (s *Store) acquire() (*readView, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.usableLocked(); err != nil {
		return nil, err
	}
	for {
		c := s.compactRev.Load()
		r := s.rev.Load()
		snap := s.newSnapshot()
		if s.compactRev.Load() == c {
			return &readView{s: s, snap: snap, rev: r, compactRev: c}, nil
		}
		s.closeSnapshot(snap)
	}
}

func (v *readView) release() { v.s.closeSnapshot(v.snap) }

// newSnapshot opens a pebble snapshot, counted in openSnaps until
// closeSnapshot.
func (s *Store) newSnapshot() *pebble.Snapshot {
	s.openSnaps.Add(1)
	return s.db.NewSnapshot()
}

// closeSnapshot closes a snapshot from newSnapshot.
func (s *Store) closeSnapshot(snap *pebble.Snapshot) error {
	err := snap.Close()
	s.openSnaps.Add(-1)
	return err
}

// Range serves a read at req.Revision (0 = current) exactly as etcd's KV
// Range. Safe to call concurrently with Apply. resp.Header.Revision is the
// current revision; the caller fills ClusterId, MemberId and RaftTerm.
// Errors: ErrCompacted, ErrFutureRev, wrapped record.ErrCorrupt, ctx.Err().
func (s *Store) Range(ctx context.Context, req *pb.RangeRequest) (*pb.RangeResponse, error) {
	// A range reads through exactly one iterator, and a Pebble iterator is a
	// point-in-time view of its own: no snapshot needed.
	return readDirect(s, func(v *directView) (*pb.RangeResponse, error) {
		return executeRange(ctx, v, req, v.rev, v.compactRev)
	})
}

// readDirect runs read, which opens at most one iterator, on a directView,
// starting over on a fresh view while a compaction scheduled meanwhile
// moves it (errViewMoved).
func readDirect[T any](s *Store, read func(v *directView) (T, error)) (T, error) {
	for {
		if err := s.usable(); err != nil {
			var zero T
			return zero, err
		}
		v := &directView{s: s, compactRev: s.compactRev.Load()}
		v.rev = s.rev.Load()
		out, err := read(v)
		if !errors.Is(err, errViewMoved) {
			return out, err
		}
	}
}

// errViewMoved: a compaction was scheduled between loading a directView's
// revisions and opening its iterator; the read starts over.
var errViewMoved = errors.New("mvcc: read view moved")

// directView is a read view for a read that opens one iterator, straight on
// the DB. Its revisions are loaded first (compaction revision, then
// revision); the iterator, opened after, sees every write up to rev (the
// revision is published after its batch commits). If the compaction revision
// did not move meanwhile, no physical deletion the iterator sees can touch a
// version at or above compactRev, so the read is exact (as acquire's
// snapshot check); otherwise NewIter returns errViewMoved.
type directView struct {
	s               *Store
	rev, compactRev int64
	opened          bool
}

// NewIter implements iterSource, once.
func (v *directView) NewIter(o *pebble.IterOptions) (*pebble.Iterator, error) {
	if v.opened {
		return nil, errors.New("mvcc: directView opens one iterator")
	}
	v.opened = true
	s := v.s
	s.mu.RLock() // not inside a Restore
	defer s.mu.RUnlock()
	if err := s.usableLocked(); err != nil {
		return nil, err
	}
	it, err := s.db.NewIter(o)
	if err != nil {
		return nil, err
	}
	if s.compactRev.Load() != v.compactRev {
		_ = it.Close()
		return nil, errViewMoved
	}
	return it, nil
}

// ReadTxn evaluates a txn whose every op (at any depth) is a range, without
// writing; ErrTxnNotReadOnly otherwise. Concurrent-safe. Request errors
// (ErrCompacted, ErrFutureRev) are returned as errors. A txn of one range and
// no compare (what clientv3's STM sends for each Get) reads through one
// iterator, as Range does, without a snapshot: taking and releasing one
// was a sixth of such a read's CPU.
func (s *Store) ReadTxn(ctx context.Context, req *pb.TxnRequest) (*pb.TxnResponse, error) {
	if !isReadOnlyTxn(req) {
		return nil, ErrTxnNotReadOnly
	}
	if isSingleRangeTxn(req) {
		return readDirect(s, func(v *directView) (*pb.TxnResponse, error) {
			t := &txnState{ctx: ctx, src: v, prefix: s.prefixSeek, beginRev: v.rev, compactRev: v.compactRev, leaseExists: s.opts.LeaseExists}
			return t.txn(req)
		})
	}
	v, err := s.acquire()
	if err != nil {
		return nil, err
	}
	defer v.release()
	t := &txnState{ctx: ctx, src: v.snap, prefix: s.prefixSeek, beginRev: v.rev, compactRev: v.compactRev, leaseExists: s.opts.LeaseExists}
	return t.txn(req)
}

// loadMeta reads the persisted meta into memory.
func (s *Store) loadMeta() error {
	a, err := readMeta(s.db, metaApplied, 16)
	if err != nil {
		return err
	}
	st := &appliedState{}
	if a != nil {
		st.index, st.term = binary.BigEndian.Uint64(a), binary.BigEndian.Uint64(a[8:])
	}
	rev, err := readMetaInt(s.db, metaRev, 1)
	if err != nil {
		return err
	}
	compact, err := readMetaInt(s.db, metaCompact, -1)
	if err != nil {
		return err
	}
	finished, err := readMetaInt(s.db, metaFinished, -1)
	if err != nil {
		return err
	}
	if err := s.loadLeaseIndexMark(a); err != nil {
		return err
	}
	s.applied.Store(st)
	s.rev.Store(rev)
	s.compactRev.Store(compact)
	s.setPhysical(finished)
	return nil
}

// getter is implemented by *pebble.DB, *pebble.Snapshot and *pebble.Batch.
type getter interface {
	Get(key []byte) ([]byte, io.Closer, error)
}

// readMeta returns the payload of a meta key (nil if absent), checking its
// length when size > 0.
func readMeta(g getter, key []byte, size int) ([]byte, error) {
	v, c, err := g.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mvcc: read meta %x: %w", key, storageErr(err))
	}
	defer c.Close()
	p, err := openMeta(key, v, size)
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), p...), nil
}

// openMeta verifies a sealed meta value and, when size > 0, its length.
func openMeta(key, v []byte, size int) ([]byte, error) {
	p, err := record.Open(key, v)
	if err != nil {
		return nil, err
	}
	if size > 0 && len(p) != size {
		return nil, corruptf("meta %x: %d bytes, want %d", key, len(p), size)
	}
	return p, nil
}

// readMetaInt reads an 8-byte meta integer, def if absent.
func readMetaInt(g getter, key []byte, def int64) (int64, error) {
	p, err := readMeta(g, key, 8)
	if err != nil || p == nil {
		return def, err
	}
	return int64(binary.BigEndian.Uint64(p)), nil
}
