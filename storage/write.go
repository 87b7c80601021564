package storage

import (
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/record"
)

// maxScratch bounds the writer scratch buffers kept between calls, so one
// huge entry does not pin its size in memory forever.
const maxScratch = 1 << 20

// Save persists a Ready's HardState (unless raft.IsEmptyHardState) and entries
// in one Pebble batch. Entries follow MemoryStorage.Append: the part at or
// below the truncation point is ignored, and entries overwrite any conflicting
// suffix (stored entries after the last new one are deleted). Entries must be
// contiguous and must not start after LastIndex()+1 (ErrOutOfBounds).
//
// With sync=true the batch is committed with pebble.Sync, which also makes
// every earlier unsynced write to the database durable; a Save with nothing
// to write still syncs the WAL then. raft requires entries to be durable
// before the leader counts its own copy or a follower acknowledges them.
//
// Saved entries are kept in the tail cache and served to readers as they are:
// the caller must not mutate them afterwards (raft's Ready contract).
// Mutators are serialised; Save may run concurrently with readers, which
// only wait for it when it overwrites existing entries.
func (s *LogStore) Save(hs *raftpb.HardState, ents []*raftpb.Entry, sync bool) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.failed != nil {
		return s.failed
	}
	ents, err := s.trimEntries(ents)
	if err != nil {
		return err
	}
	writeHS := !raft.IsEmptyHardState(hs)
	sync = sync && !unsafeNoSync
	if !writeHS && len(ents) == 0 {
		if !sync {
			return nil
		}
		start := time.Now()
		err := s.check(s.db.LogData(nil, pebble.Sync))
		s.observeSync(start)
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	if writeHS {
		if err := s.putScratch(b, keyHardState, hs); err != nil {
			return err
		}
	}
	if err := s.putEntries(b, ents); err != nil {
		return err
	}
	if len(ents) > 0 && ents[0].GetIndex() <= s.last {
		// Rewrites entries readers may be looking at: exclude them.
		s.mu.Lock()
		defer s.mu.Unlock()
		if err := s.commit(b, sync); err != nil {
			return err
		}
		s.publishSave(hs, writeHS, ents)
		return nil
	}
	if err := s.commit(b, sync); err != nil {
		return err
	}
	s.mu.Lock()
	s.publishSave(hs, writeHS, ents)
	s.mu.Unlock()
	return nil
}

// trimEntries drops the entries at or below the truncation point and checks
// the rest are contiguous and leave no hole after the last index.
func (s *LogStore) trimEntries(ents []*raftpb.Entry) ([]*raftpb.Entry, error) {
	if len(ents) == 0 {
		return nil, nil
	}
	start := ents[0].GetIndex()
	for k, e := range ents {
		if e.GetIndex() != start+uint64(k) {
			return nil, fmt.Errorf("%w: entries not contiguous: index %d at position %d after %d", ErrOutOfBounds, e.GetIndex(), k, start)
		}
	}
	first := s.offset + 1
	if start+uint64(len(ents))-1 < first {
		return nil, nil
	}
	if start < first {
		ents = ents[first-start:]
		start = first
	}
	if start > s.last+1 {
		return nil, fmt.Errorf("%w: missing log entries: last index %d, append at %d", ErrOutOfBounds, s.last, start)
	}
	return ents, nil
}

// putEntries adds ents to b, deletes the stored entries after the last of
// them, and records each entry's size in s.sizes.
func (s *LogStore) putEntries(b *pebble.Batch, ents []*raftpb.Entry) error {
	s.sizes = s.sizes[:0]
	for _, e := range ents {
		s.keyBuf = appendLogKey(s.keyBuf[:0], e.GetIndex())
		if err := s.putScratch(b, s.keyBuf, e); err != nil {
			return err
		}
		s.sizes = append(s.sizes, uint64(len(s.payload)))
	}
	if cap(s.payload) > maxScratch {
		s.payload, s.sealed = nil, nil
	}
	if len(ents) > 0 {
		if newLast := ents[len(ents)-1].GetIndex(); newLast < s.last {
			return b.DeleteRange(logKey(newLast+1), logEnd, nil)
		}
	}
	return nil
}

// putScratch adds key → Seal(marshal(m)) to b, encoding through the writer
// scratch buffers (no allocation once they have grown). s.payload holds the
// marshalled m afterwards. The caller holds wmu.
func (s *LogStore) putScratch(b *pebble.Batch, key []byte, m proto.Message) error {
	var err error
	if s.payload, err = (proto.MarshalOptions{}).MarshalAppend(s.payload[:0], m); err != nil {
		return fmt.Errorf("storage: marshal %T under %x: %w", m, key, err)
	}
	s.sealed = record.Seal(s.sealed[:0], key, s.payload)
	return b.Set(key, s.sealed, nil)
}

// publishSave updates the in-memory state after a committed Save. The caller
// holds wmu and mu.
func (s *LogStore) publishSave(hs *raftpb.HardState, writeHS bool, ents []*raftpb.Entry) {
	if writeHS {
		s.hs = hardState{set: true, term: hs.GetTerm(), vote: hs.GetVote(), commit: hs.GetCommit()}
	}
	if len(ents) == 0 {
		return
	}
	s.cache.truncateFrom(ents[0].GetIndex())
	for k, e := range ents {
		s.cache.push(e, s.sizes[k])
	}
	s.last = ents[len(ents)-1].GetIndex()
}

// commit commits b; a failure makes the store refuse later mutations, since
// what reached the disk is unknown. The caller holds wmu.
func (s *LogStore) commit(b *pebble.Batch, sync bool) error {
	if !sync || unsafeNoSync {
		return s.check(b.Commit(pebble.NoSync))
	}
	start := time.Now()
	err := s.check(b.Commit(pebble.Sync))
	s.observeSync(start)
	return err
}

// ObserveSync sets f to be called with the duration of every synced commit
// (the WAL fsync etcd reports as etcd_disk_wal_fsync_duration_seconds).
// f runs on the writer's goroutine and must be cheap.
func (s *LogStore) ObserveSync(f func(time.Duration)) {
	s.wmu.Lock()
	s.onSync = f
	s.wmu.Unlock()
}

// observeSync reports a synced commit that started at start. The caller
// holds wmu.
func (s *LogStore) observeSync(start time.Time) {
	if s.onSync != nil {
		s.onSync(time.Since(start))
	}
}

// check records a failed write. The caller holds wmu.
func (s *LogStore) check(err error) error {
	if err != nil {
		s.failed = fmt.Errorf("storage: a write failed, the store refuses further writes: %w", err)
	}
	return err
}

// ApplySnapshot installs a snapshot received from the leader: it records the
// snapshot's metadata (Data is not stored; synod streams the state machine
// separately), makes its index and term the truncation point, and discards
// the entire log, in one synced batch. A stored HardState whose commit is
// below the snapshot index is raised to it in the same batch (raiseCommit).
// raft.ErrSnapOutOfDate if a snapshot
// at the same or a higher index is already installed (as MemoryStorage, an
// index-0 snapshot carrying only a ConfState may be applied to a store
// whose snapshot index is 0). snap is not modified.
//
// Mutators are serialised; readers wait for ApplySnapshot to finish.
func (s *LogStore) ApplySnapshot(snap *raftpb.Snapshot) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.failed != nil {
		return s.failed
	}
	meta := new(raftpb.SnapshotMetadata)
	if m := snap.GetMetadata(); m != nil {
		meta = proto.Clone(m).(*raftpb.SnapshotMetadata)
	}
	raftpb.EnsureSnapshotMetadata(meta)
	if cur := s.snap.GetIndex(); cur != 0 && cur >= meta.GetIndex() {
		return raft.ErrSnapOutOfDate
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := s.putSnapshotAndTruncate(b, meta, meta.GetIndex(), meta.GetTerm(), logEnd); err != nil {
		return err
	}
	hs, err := s.raiseCommit(b, meta.GetIndex())
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.commit(b, true); err != nil {
		return err
	}
	s.hs = hs
	s.snap = meta
	s.offset, s.offsetTerm, s.last = meta.GetIndex(), meta.GetTerm(), meta.GetIndex()
	s.cache.reset()
	return nil
}

// raiseCommit keeps the stored HardState's commit index at or above index,
// the index of a snapshot or truncation point being written in b: if it is
// below, b also rewrites the HardState with commit = index. It returns the
// in-memory HardState to publish once b is committed. Every entry up to a
// snapshot or truncation point is committed by definition, and raft refuses
// to start (it panics) from a HardState committing less than its snapshot
// or truncation point. The stored commit can lag that far because the
// caller need not persist a HardState whose only change is the commit index
// (raftnode writes it with the next entries: docs/performance.md). The
// caller holds wmu.
func (s *LogStore) raiseCommit(b *pebble.Batch, index uint64) (hardState, error) {
	hs := s.hs
	if !hs.set || hs.commit >= index {
		return hs, nil
	}
	hs.commit = index
	err := setProto(b, keyHardState, &raftpb.HardState{
		Term: proto.Uint64(hs.term), Vote: proto.Uint64(hs.vote), Commit: proto.Uint64(hs.commit),
	})
	return hs, err
}

// putSnapshotAndTruncate adds to b: the snapshot metadata (if meta != nil),
// the truncation point (index, term), and the deletion of every log key
// below deleteEnd.
func (s *LogStore) putSnapshotAndTruncate(b *pebble.Batch, meta *raftpb.SnapshotMetadata, index, term uint64, deleteEnd []byte) error {
	if meta != nil {
		if err := setProto(b, keySnapshot, meta); err != nil {
			return err
		}
	}
	if err := setSealed(b, keyTruncated, encodeTruncated(index, term)); err != nil {
		return err
	}
	return b.DeleteRange(logStart, deleteEnd, nil)
}

// CreateSnapshot records snapshot metadata at index (its term looked up in the
// log) with ConfState cs (nil keeps the previous ConfState) and returns the
// snapshot. Data is always empty: synod streams the state machine separately
// (docs/architecture.md). raft.ErrSnapOutOfDate if index <= the current
// snapshot index; ErrOutOfBounds if index > LastIndex(); raft.ErrCompacted if
// index is below the truncation point. The log is not truncated (see Compact).
// The write is not synced: it becomes durable with the next synced write.
// A stored HardState committing less than index is raised to it in the
// same batch (raiseCommit).
//
// Mutators are serialised; CreateSnapshot may run concurrently with readers.
func (s *LogStore) CreateSnapshot(index uint64, cs *raftpb.ConfState) (*raftpb.Snapshot, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.failed != nil {
		return nil, s.failed
	}
	if index <= s.snap.GetIndex() {
		return nil, raft.ErrSnapOutOfDate
	}
	if index > s.last {
		return nil, fmt.Errorf("%w: snapshot %d past last index %d", ErrOutOfBounds, index, s.last)
	}
	term, err := s.term(index)
	if err != nil {
		return nil, err
	}
	meta := proto.Clone(s.snap).(*raftpb.SnapshotMetadata)
	meta.Index, meta.Term = proto.Uint64(index), proto.Uint64(term)
	if cs != nil {
		meta.ConfState = proto.Clone(cs).(*raftpb.ConfState)
	}
	raftpb.EnsureSnapshotMetadata(meta)
	b := s.db.NewBatch()
	defer b.Close()
	if err := setProto(b, keySnapshot, meta); err != nil {
		return nil, err
	}
	hs, err := s.raiseCommit(b, index)
	if err != nil {
		return nil, err
	}
	if err := s.commit(b, false); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.snap, s.hs = meta, hs
	s.mu.Unlock()
	return &raftpb.Snapshot{Metadata: proto.Clone(meta).(*raftpb.SnapshotMetadata)}, nil
}

// Compact discards the log entries before compactIndex, which becomes the
// truncation point (FirstIndex()-1; its term stays available through Term),
// with one Pebble DeleteRange. It follows MemoryStorage.Compact:
// raft.ErrCompacted if compactIndex <= FirstIndex()-1, ErrOutOfBounds if
// compactIndex > LastIndex(). Like MemoryStorage it does not check the
// snapshot: the caller must not compact past the latest snapshot's index
// (nor past the applied index). The write is not synced: if it is lost in a
// crash, the discarded entries reappear, which is harmless. A stored
// HardState committing less than compactIndex is raised to it in the same
// batch (raiseCommit).
//
// Mutators are serialised; readers wait for Compact to finish.
func (s *LogStore) Compact(compactIndex uint64) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.failed != nil {
		return s.failed
	}
	if compactIndex <= s.offset {
		return raft.ErrCompacted
	}
	if compactIndex > s.last {
		return fmt.Errorf("%w: compact %d past last index %d", ErrOutOfBounds, compactIndex, s.last)
	}
	term, err := s.term(compactIndex)
	if err != nil {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := s.putSnapshotAndTruncate(b, nil, compactIndex, term, logKey(compactIndex+1)); err != nil {
		return err
	}
	hs, err := s.raiseCommit(b, compactIndex)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.commit(b, false); err != nil {
		return err
	}
	s.hs = hs
	s.offset, s.offsetTerm = compactIndex, term
	s.cache.dropBefore(compactIndex + 1)
	return nil
}
