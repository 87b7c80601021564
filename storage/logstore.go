package storage

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// ErrOutOfBounds is returned (wrapped) for requests past the end of the log or
// writes that would leave a hole in it: the cases where raft.MemoryStorage
// panics. raft itself never makes such requests; seeing one is a bug in the
// caller. The store is left unchanged.
var ErrOutOfBounds = errors.New("storage: index out of bounds")

// LogStore implements raft.Storage over a shared *pebble.DB, plus the
// mutators the raft loop uses to persist Ready (Save, ApplySnapshot) and to
// snapshot and truncate the log (CreateSnapshot, Compact).
//
// All methods are safe for concurrent use (see the package documentation);
// the intended caller is the member's raft loop. The LogStore does not own
// the database: the caller closes it, after it has stopped using the store.
type LogStore struct {
	db *pebble.DB

	// wmu serialises mutators. Fields below are written only with both wmu
	// and mu held, so a mutator holding wmu may read them without mu.
	wmu sync.Mutex
	// mu guards the in-memory state against concurrent readers. Readers hold
	// it (shared) for the whole call, including Pebble reads, so a mutation
	// that removes or rewrites observable entries holds it exclusively
	// while it commits.
	mu sync.RWMutex

	offset     uint64 // truncation point: index of the dummy entry
	offsetTerm uint64 // term of the dummy entry
	last       uint64 // last index; == offset when the log is empty
	hs         hardState
	snap       *raftpb.SnapshotMetadata // never nil, fields all set
	cache      *tailCache

	// onSync, if set, is called with the duration of every synced commit.
	// Guarded by wmu.
	onSync func(time.Duration)

	// failed is set when a batch failed to commit: the state on disk is then
	// unknown, so every later mutation is refused. Guarded by wmu.
	failed error

	// Writer scratch buffers, guarded by wmu.
	keyBuf  []byte
	payload []byte
	sealed  []byte
	sizes   []uint64

	// diskReads counts reads that went to Pebble (tests use it to prove the
	// tail cache serves recent entries).
	diskReads atomic.Uint64
}

// hardState is the in-memory copy of the persisted HardState.
type hardState struct {
	set                bool
	term, vote, commit uint64
}

var _ raft.Storage = (*LogStore)(nil)

// Open loads a LogStore from db: the HardState, the snapshot metadata, the
// truncation point and the last index. An empty database yields an empty
// store (FirstIndex 1, LastIndex 0, nil HardState, empty snapshot). Records
// that fail verification make Open return an error wrapping
// record.ErrCorrupt.
//
// Open must not run concurrently with another LogStore's mutators on the same
// database; one LogStore per database is expected.
func Open(db *pebble.DB) (*LogStore, error) {
	return open(db, defaultCacheEntries, defaultCacheBytes)
}

// open is Open with explicit tail cache bounds (0 entries disables the cache).
func open(db *pebble.DB, cacheEntries int, cacheBytes uint64) (*LogStore, error) {
	s := &LogStore{db: db, cache: newTailCache(cacheEntries, cacheBytes)}
	if err := s.loadHardState(); err != nil {
		return nil, err
	}
	s.snap = new(raftpb.SnapshotMetadata)
	if _, err := getProto(db, keySnapshot, s.snap); err != nil {
		return nil, err
	}
	raftpb.EnsureSnapshotMetadata(s.snap)
	if _, err := getRecord(db, keyTruncated, func(p []byte) (err error) {
		s.offset, s.offsetTerm, err = decodeTruncated(p)
		return err
	}); err != nil {
		return nil, err
	}
	if err := s.loadLastIndex(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *LogStore) loadHardState() error {
	var hs raftpb.HardState
	found, err := getProto(s.db, keyHardState, &hs)
	if err != nil || !found {
		return err
	}
	s.hs = hardState{set: true, term: hs.GetTerm(), vote: hs.GetVote(), commit: hs.GetCommit()}
	return nil
}

// loadLastIndex finds the last index and checks that the log's first stored
// entry directly follows the truncation point and both ends verify.
func (s *LogStore) loadLastIndex() error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: logStart, UpperBound: logEnd})
	if err != nil {
		return fmt.Errorf("storage: open raft log iterator: %w", err)
	}
	defer it.Close()
	s.last = s.offset
	if !it.First() {
		return it.Error()
	}
	first, err := iterEntry(it)
	if err != nil {
		return err
	}
	if first.GetIndex() != s.offset+1 {
		return corruptf("raft log starts at %d, want %d (truncation point %d)", first.GetIndex(), s.offset+1, s.offset)
	}
	if !it.Last() {
		return errors.Join(corruptf("raft log iterator lost its last entry"), it.Error())
	}
	last, err := iterEntry(it)
	if err != nil {
		return err
	}
	s.last = last.GetIndex()
	return nil
}

// iterEntry verifies and decodes the entry under a valid iterator.
func iterEntry(it *pebble.Iterator) (*raftpb.Entry, error) {
	v, err := it.ValueAndErr()
	if err != nil {
		return nil, readErr(err)
	}
	return decodeEntry(it.Key(), v)
}

// InitialState implements raft.Storage: the saved HardState (nil if none was
// ever saved) and the ConfState of the latest snapshot (empty if none). The
// results are copies. Safe for concurrent use.
func (s *LogStore) InitialState() (*raftpb.HardState, *raftpb.ConfState, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	cs := proto.Clone(s.snap.GetConfState()).(*raftpb.ConfState)
	if !s.hs.set {
		return nil, cs, nil
	}
	return &raftpb.HardState{
		Term:   proto.Uint64(s.hs.term),
		Vote:   proto.Uint64(s.hs.vote),
		Commit: proto.Uint64(s.hs.commit),
	}, cs, nil
}

// FirstIndex implements raft.Storage. Safe for concurrent use.
func (s *LogStore) FirstIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.offset + 1, nil
}

// LastIndex implements raft.Storage. Safe for concurrent use.
func (s *LogStore) LastIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.last, nil
}

// Snapshot implements raft.Storage: the latest snapshot's metadata (index,
// term, ConfState), as a copy. Data is always empty: synod streams the state
// machine separately. Safe for concurrent use.
func (s *LogStore) Snapshot() (*raftpb.Snapshot, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return &raftpb.Snapshot{Metadata: proto.Clone(s.snap).(*raftpb.SnapshotMetadata)}, nil
}

// Term implements raft.Storage with MemoryStorage's contract: the term of
// entry i for i in [FirstIndex()-1, LastIndex()], raft.ErrCompacted below
// that range and raft.ErrUnavailable above it. Safe for concurrent use.
func (s *LogStore) Term(i uint64) (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.term(i)
}

// term is Term; the caller holds mu (shared) or wmu.
func (s *LogStore) term(i uint64) (uint64, error) {
	switch {
	case i < s.offset:
		return 0, raft.ErrCompacted
	case i > s.last:
		return 0, raft.ErrUnavailable
	case i == s.offset:
		return s.offsetTerm, nil
	}
	if c, ok := s.cache.get(i); ok {
		return c.e.GetTerm(), nil
	}
	e, err := s.readEntry(i)
	if err != nil {
		return 0, err
	}
	return e.GetTerm(), nil
}

// readEntry reads entry i, which must lie in (offset, last], from Pebble.
func (s *LogStore) readEntry(i uint64) (*raftpb.Entry, error) {
	s.diskReads.Add(1)
	var e *raftpb.Entry
	key := logKey(i)
	found, err := getRecord(s.db, key, func(p []byte) error {
		var err error
		e, err = decodePayload(i, p)
		return err
	})
	if err == nil && !found {
		err = corruptf("raft log entry %d is missing (log is (%d, %d])", i, s.offset, s.last)
	}
	return e, err
}
