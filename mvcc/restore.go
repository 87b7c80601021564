package mvcc

import (
	"fmt"
	"os"

	"github.com/cockroachdb/pebble/v2"
)

// restoreBatchBytes bounds the size of one restore batch.
const restoreBatchBytes = 4 << 20

// Restore replaces the whole state keyspace (keys >= 0x10) with the snapshot
// stream in the file at path (written by Snapshot.WriteTo), and sets the
// applied index/term and the in-memory revisions from it.
//
// The whole file is verified (framing and checksum) before anything changes;
// a bad file is rejected with a wrapped record.ErrCorrupt and the store is
// untouched. Then: a synced write of a restore marker naming path; a
// delete-range of the state keyspace and re-insertion in bounded batches
// (the file is streamed, never held in memory); a final synced batch setting
// the applied index/term and clearing the marker. Open finishes a restore
// interrupted by a crash. An error after the marker is written leaves the
// store failed (every method returns it): the member must stop and reopen.
// Reads wait while Restore runs. Pending Result.Compacted channels are closed.
func (s *Store) Restore(path string) error {
	if err := s.usable(); err != nil {
		return err
	}
	if _, err := verifySnapshotFile(path); err != nil {
		return err
	}
	s.stopCompactor()
	if err := s.db.Set(metaRestore, seal(metaRestore, []byte(path)), pebble.Sync); err != nil {
		s.startCompactor()
		return fmt.Errorf("mvcc: write restore marker: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed { // closed meanwhile: Open finishes the restore from the marker
		return ErrClosed
	}
	s.gens.reset()
	s.dropCompactHashes()
	if err := s.replaceState(path); err != nil {
		s.failed = err
		return err
	}
	if err := s.loadMeta(); err != nil {
		s.failed = err
		return err
	}
	s.releaseAllWaiters()
	s.startCompactor()
	return nil
}

// finishRestore completes a restore interrupted by a crash, if the marker is
// set. Called by Open before anything is loaded.
func (s *Store) finishRestore() error {
	p, err := readMeta(s.db, metaRestore, 0)
	if err != nil || p == nil {
		return err
	}
	path := string(p)
	if _, err := verifySnapshotFile(path); err != nil {
		return fmt.Errorf("mvcc: finish interrupted restore from %s: %w", path, err)
	}
	return s.replaceState(path)
}

// VerifySnapshotFile checks the framing and checksum of the snapshot stream
// in the file at path (as written by Snapshot.WriteTo) without touching any
// store: what a follower runs on a received file before handing it to raft.
// A bad stream is a wrapped record.ErrCorrupt. Restore runs the same check.
func VerifySnapshotFile(path string) error {
	_, err := verifySnapshotFile(path)
	return err
}

// verifySnapshotFile checks the framing and checksum of a whole stream file.
func verifySnapshotFile(path string) (snapTrailer, error) {
	return streamFile(path, nil)
}

// streamFile parses the stream in path, calling fn for each record.
func streamFile(path string, fn func(k, v []byte) error) (snapTrailer, error) {
	f, err := os.Open(path)
	if err != nil {
		return snapTrailer{}, fmt.Errorf("mvcc: open snapshot: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return snapTrailer{}, fmt.Errorf("mvcc: stat snapshot: %w", err)
	}
	return readStream(f, st.Size(), fn)
}

// replaceState deletes the state keyspace except the marker, streams the
// file back in bounded batches and commits the final synced batch.
func (s *Store) replaceState(path string) error {
	b := s.db.NewBatch()
	defer func() { _ = b.Close() }()
	if err := s.deleteState(b); err != nil {
		return err
	}
	batchNo := 0
	tr, err := streamFile(path, func(k, v []byte) error {
		if err := b.Set(k, v, nil); err != nil {
			return err
		}
		if b.Len() < s.restoreBatchBytes() {
			return nil
		}
		if h := s.opts.hooks; h != nil && h.restoreBatch != nil {
			if err := h.restoreBatch(batchNo); err != nil {
				return err
			}
		}
		batchNo++
		if err := b.Commit(pebble.NoSync); err != nil {
			return fmt.Errorf("mvcc: restore batch: %w", err)
		}
		b.Reset()
		return nil
	})
	if err != nil {
		return err
	}
	if err := setMeta(b, metaApplied, appliedBytes(tr.index, tr.term)); err != nil {
		return err
	}
	if err := b.Delete(metaRestore, nil); err != nil {
		return err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("mvcc: restore final batch: %w", err)
	}
	return nil
}

// deleteState adds to b range deletions of every key >= 0x10 but the marker.
func (s *Store) deleteState(b *pebble.Batch) (err error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: stateStart})
	if err != nil {
		return fmt.Errorf("mvcc: restore iterator: %w", err)
	}
	if !it.Last() {
		return closeIter(it, nil)
	}
	end := append(append([]byte(nil), it.Key()...), 0x00)
	if err := closeIter(it, nil); err != nil {
		return err
	}
	if err := b.DeleteRange(stateStart, metaRestore, nil); err != nil {
		return err
	}
	after := append(append([]byte(nil), metaRestore...), 0x00)
	if string(after) < string(end) {
		return b.DeleteRange(after, end, nil)
	}
	return nil
}

func (s *Store) restoreBatchBytes() int {
	if h := s.opts.hooks; h != nil && h.restoreBatchBytes > 0 {
		return h.restoreBatchBytes
	}
	return restoreBatchBytes
}

// releaseAllWaiters closes every pending compaction waiter: after a restore
// the compaction history they waited on is gone.
func (s *Store) releaseAllWaiters() {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	for _, w := range s.waiters {
		close(w.ch)
	}
	s.waiters = nil
}
