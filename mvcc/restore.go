package mvcc

import (
	"bytes"
	"context"
	"fmt"
	"os"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Restore replaces the whole state keyspace (keys >= 0x10) with the
// snapshot at index/term that ReceiveSnapshot stored (ErrNoSnapshot if
// none), and sets the applied index/term and the in-memory revisions from
// it. Its tables are built and verified already: a synced write of a
// restore marker naming them; every old state key but the marker removed
// (clearState); the tables ingested; a final synced batch setting the
// applied index/term and clearing the marker; the tables' directory (and
// any other received snapshot at or below index) removed. Open finishes a
// restore interrupted by a crash from the same tables. An error after the
// marker is written leaves the store failed (every method returns it): the
// member must stop and reopen. Reads wait while the old state is replaced.
// Pending Result.Compacted channels are closed.
func (s *Store) Restore(index, term uint64) error {
	if err := s.usable(); err != nil {
		return err
	}
	if s.opts.IngestDir == "" {
		return ErrNoIngestDir
	}
	r, err := s.findReceived(index, term)
	if err != nil {
		return err
	}
	tabs, err := s.receivedTables(r)
	if err != nil {
		return err
	}
	s.stopCompactor()
	if err := s.db.Set(metaRestore, seal(metaRestore, tablesMarker(r)), pebble.Sync); err != nil {
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
	if err := s.replaceState(tabs); err != nil {
		s.failed = err
		return err
	}
	if err := s.loadMeta(); err != nil {
		s.failed = err
		return err
	}
	s.releaseAllWaiters()
	s.startCompactor()
	return s.removeReceived(index)
}

// The restore marker's value: a received snapshot's directory name after
// a zero byte. An older release wrote the path of its stream file, which
// never starts with one.
const markerTables = 0x00

func tablesMarker(r received) []byte { return append([]byte{markerTables}, r.name()...) }

// finishRestore completes a restore interrupted by a crash, if the marker is
// set. Called by Open before anything is loaded.
func (s *Store) finishRestore() error {
	p, err := readMeta(s.db, metaRestore, 0)
	if err != nil || p == nil {
		return err
	}
	if len(p) == 0 || p[0] != markerTables {
		return s.finishFileRestore(string(p))
	}
	r, ok := parseReceived(string(p[1:]))
	if !ok {
		return corruptf("restore marker %q names no received snapshot", p)
	}
	tabs, err := s.receivedTables(r)
	if err != nil {
		return fmt.Errorf("mvcc: finish interrupted restore of %s: %w", r.name(), err)
	}
	if err := s.replaceState(tabs); err != nil {
		return err
	}
	return s.ingestFS().RemoveAll(tabs.dir)
}

// finishFileRestore finishes a restore an older release started from the
// stream file at path: its tables are written again from the file.
func (s *Store) finishFileRestore(path string) error {
	tabs, err := s.writeTables(path)
	if err != nil {
		return fmt.Errorf("mvcc: finish interrupted restore from %s: %w", path, err)
	}
	defer func() { _ = s.ingestFS().RemoveAll(tabs.dir) }()
	return s.replaceState(tabs)
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

// restoreTables are the sstables of a verified stream, in dir, and the
// index and term it ends with.
type restoreTables struct {
	dir   string
	paths []string
	tr    snapTrailer
}

// receivedTables lists the tables of the received snapshot r, checking
// that they are all there.
func (s *Store) receivedTables(r received) (*restoreTables, error) {
	fs := s.ingestFS()
	dir := fs.PathJoin(s.opts.IngestDir, r.name())
	tabs := &restoreTables{dir: dir, tr: snapTrailer{index: r.index, term: r.term}}
	for i := range r.tables {
		p := fs.PathJoin(dir, tableName(i))
		if _, err := fs.Stat(p); err != nil {
			return nil, fmt.Errorf("mvcc: received snapshot %s: %w", r.name(), err)
		}
		tabs.paths = append(tabs.paths, p)
	}
	return tabs, nil
}

// writeTables streams the records of the file at path into sstables in a
// directory of Options.IngestDir (streamTables).
func (s *Store) writeTables(path string) (*restoreTables, error) {
	fs := s.ingestFS()
	return s.streamTables(fs, fs.PathJoin(s.opts.IngestDir, "file.tmp"), func(add func(k, v []byte) error) (snapTrailer, error) {
		return streamFile(path, add)
	})
}

// streamTables creates dir empty and writes the records read hands to add
// into sorted sstables in it, while read verifies the stream they come
// from: the one path by which a stream becomes the tables a restore
// ingests, from a file or as it is received. On any error the tables and
// dir are removed. Memory is bounded by one table's blocks.
func (s *Store) streamTables(fs vfs.FS, dir string, read func(add func(k, v []byte) error) (snapTrailer, error)) (*restoreTables, error) {
	if err := fs.RemoveAll(dir); err != nil { // a crash's leftover of the same name
		return nil, fmt.Errorf("mvcc: restore table directory: %w", err)
	}
	if err := fs.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("mvcc: restore table directory: %w", err)
	}
	tw := newTableWriter(fs, dir, s.db.TableFormat(), s.restoreTableBytes())
	tr, err := read(tw.add)
	if err == nil {
		err = tw.finish()
	}
	if err != nil {
		tw.abort()
		_ = fs.RemoveAll(dir)
		return nil, err
	}
	return &restoreTables{dir: dir, paths: tw.paths, tr: tr}, nil
}

// replaceState removes every state key but the marker, ingests the tables
// and commits the final synced batch: the applied index/term, the marker
// cleared. Each step is redone whole by finishRestore after a crash.
func (s *Store) replaceState(tabs *restoreTables) error {
	if err := s.restoreStep(stepTablesWritten); err != nil {
		return err
	}
	if err := s.clearState(); err != nil {
		return err
	}
	if err := s.ingest(tabs); err != nil {
		return err
	}
	if err := s.restoreStep(stepIngested); err != nil {
		return err
	}
	b := s.db.NewBatch()
	defer func() { _ = b.Close() }()
	if err := setMeta(b, metaApplied, appliedBytes(tabs.tr.index, tabs.tr.term)); err != nil {
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

// clearState removes every key >= 0x10 but the marker. A database whose
// format supports it excises the spans (their tables are dropped or
// narrowed, nothing is rewritten), unless a pebble snapshot of the store is
// open: an excise removes data from open snapshots too, and a read view or
// a stream being sent must keep seeing the old state. Otherwise (and then)
// the spans are range-deleted and compactions drop the old keys later.
func (s *Store) clearState() error {
	spans, err := s.stateSpans()
	if err != nil {
		return err
	}
	if s.db.FormatMajorVersion() >= pebble.FormatVirtualSSTables && s.openSnaps.Load() == 0 {
		for _, sp := range spans {
			if err := s.db.Excise(context.Background(), sp); err != nil {
				return fmt.Errorf("mvcc: restore excise: %w", err)
			}
		}
		return nil
	}
	b := s.db.NewBatch()
	defer func() { _ = b.Close() }()
	for _, sp := range spans {
		if err := b.DeleteRange(sp.Start, sp.End, nil); err != nil {
			return err
		}
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("mvcc: restore delete: %w", err)
	}
	return nil
}

// stateSpans returns spans covering every stored key >= 0x10 but the
// restore marker. Every bound is a whole prefix (Comparer.Split), as an
// excise requires.
func (s *Store) stateSpans() ([]pebble.KeyRange, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: stateStart})
	if err != nil {
		return nil, fmt.Errorf("mvcc: restore iterator: %w", err)
	}
	if !it.Last() {
		return nil, closeIter(it, nil)
	}
	end := spanEnd(it.Key())
	if err := closeIter(it, nil); err != nil {
		return nil, err
	}
	spans := []pebble.KeyRange{{Start: stateStart, End: metaRestore}}
	if after := append(bytes.Clone(metaRestore), 0x00); bytes.Compare(after, end) < 0 {
		spans = append(spans, pebble.KeyRange{Start: after, End: end})
	}
	return spans, nil
}

// spanEnd returns a key after last that is a whole prefix: the next first
// byte (no key of the version keyspace is a whole prefix of one byte), or
// last + 0x00 when the first byte is 0xFF (never a version key).
func spanEnd(last []byte) []byte {
	if last[0] < 0xFF {
		return []byte{last[0] + 1}
	}
	return append(bytes.Clone(last), 0x00)
}

// Restore steps at which tests may interrupt a restore (testHooks).
const (
	stepTablesWritten = "tables written" // and the marker: nothing removed yet
	stepIngested      = "ingested"
)

// restoreStep runs the test hook for step, if any.
func (s *Store) restoreStep(step string) error {
	if h := s.opts.hooks; h != nil && h.restoreStep != nil {
		return h.restoreStep(step)
	}
	return nil
}

func (s *Store) restoreTableBytes() int {
	if h := s.opts.hooks; h != nil && h.restoreTableBytes > 0 {
		return h.restoreTableBytes
	}
	return restoreTableBytes
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
