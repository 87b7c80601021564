package mvcc

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/synod-db/synod/internal/durable"
)

// ErrNoSnapshot is returned by Restore when no received snapshot of that
// index and term is stored (ReceiveSnapshot never completed it, or it was
// installed or superseded already).
var ErrNoSnapshot = errors.New("mvcc: no received snapshot")

// ReceiveSnapshot turns the snapshot stream body (Snapshot.WriteTo's
// output, as a leader sends it) of the snapshot at index/term into the
// sstables a Restore ingests, while it arrives: the records go into sorted
// tables as in Restore, the stream is verified as it goes (doc.go,
// "Snapshot stream"; its trailer must name index and term), every table
// is synced, and only then is the directory holding them named for the
// snapshot (received), atomically and durably. A bad or cut-off stream
// leaves nothing behind and changes nothing (a wrapped record.ErrCorrupt
// for a bad one). Memory is one table's blocks. It may run on any
// goroutine, concurrently with the raft loop and with other receipts.
func (s *Store) ReceiveSnapshot(index, term uint64, body io.Reader) error {
	if err := s.usable(); err != nil {
		return err
	}
	fs, root := s.ingestFS(), s.opts.IngestDir
	if root == "" {
		return ErrNoIngestDir
	}
	if err := s.removeReceived(s.appliedIndex()); err != nil {
		return err
	}
	if err := makeDurableDir(fs, root); err != nil {
		return err
	}
	tmp := fs.PathJoin(root, fmt.Sprintf("recv-%016x-%016x-%d.tmp", term, index, s.recvSeq.Add(1)))
	n, err := s.receiveTables(fs, tmp, index, term, body)
	if err == nil {
		err = s.publishReceived(fs, tmp, received{index: index, term: term, tables: n})
	}
	if err != nil {
		_ = fs.RemoveAll(tmp)
		return err
	}
	return nil
}

// receiveTables writes the tables of body into dir (streamTables),
// verifying the stream and that it is the snapshot at index/term, and syncs
// dir: it returns how many tables it wrote.
func (s *Store) receiveTables(fs vfs.FS, dir string, index, term uint64, body io.Reader) (int, error) {
	sr := newStreamReader(body, math.MaxInt64)
	sr.open = true
	tabs, err := s.streamTables(fs, dir, func(add func(k, v []byte) error) (snapTrailer, error) {
		tr, err := readStreamFrom(sr, add)
		if err == nil && (tr.index != index || tr.term != term) {
			err = corruptf("snapshot: the stream is of index %d term %d, its message says index %d term %d",
				tr.index, tr.term, index, term)
		}
		return tr, err
	})
	if err != nil {
		return 0, err
	}
	if err := durable.SyncDir(fs, dir); err != nil {
		return 0, fmt.Errorf("mvcc: receive snapshot: %w", err)
	}
	return len(tabs.paths), nil
}

// publishReceived names the verified, synced directory tmp for r, durably.
// If a concurrent receipt of the same snapshot published it first, tmp is
// dropped instead: a Restore finds the other copy. (One that raft turns
// down as stale is removed by the next receipt, Restore or Open: it is at
// or below the applied index by then.)
func (s *Store) publishReceived(fs vfs.FS, tmp string, r received) error {
	s.recvMu.Lock()
	defer s.recvMu.Unlock()
	have, err := s.receivedDirs()
	if err != nil {
		return err
	}
	if slices.ContainsFunc(have, r.sameSnapshot) {
		return fs.RemoveAll(tmp)
	}
	if err := fs.Rename(tmp, fs.PathJoin(s.opts.IngestDir, r.name())); err != nil {
		return fmt.Errorf("mvcc: receive snapshot: %w", err)
	}
	if err := durable.SyncDir(fs, s.opts.IngestDir); err != nil {
		return fmt.Errorf("mvcc: receive snapshot: %w", err)
	}
	return nil
}

// received is a received snapshot's table directory, named
// snap-<term>-<index>-<tables> (hexadecimal term and index, decimal count)
// in Options.IngestDir: it exists only once every table in it is synced
// and the stream they came from verified.
type received struct {
	index, term uint64
	tables      int
}

func (r received) name() string {
	return fmt.Sprintf("snap-%016x-%016x-%d", r.term, r.index, r.tables)
}

func (r received) sameSnapshot(o received) bool { return r.index == o.index && r.term == o.term }

// parseReceived reads a directory name written by received.name.
func parseReceived(name string) (received, bool) {
	var r received
	if !strings.HasPrefix(name, "snap-") {
		return r, false
	}
	n, err := fmt.Sscanf(name, "snap-%016x-%016x-%d", &r.term, &r.index, &r.tables)
	return r, err == nil && n == 3 && r.name() == name
}

// receivedDirs lists the received snapshots in Options.IngestDir.
func (s *Store) receivedDirs() ([]received, error) {
	names, err := s.ingestFS().List(s.opts.IngestDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("mvcc: list received snapshots: %w", err)
	}
	var out []received
	for _, n := range names {
		if r, ok := parseReceived(n); ok {
			out = append(out, r)
		}
	}
	return out, nil
}

// findReceived returns the received snapshot of index and term.
func (s *Store) findReceived(index, term uint64) (received, error) {
	have, err := s.receivedDirs()
	if err != nil {
		return received{}, err
	}
	want := received{index: index, term: term}
	if i := slices.IndexFunc(have, want.sameSnapshot); i >= 0 {
		return have[i], nil
	}
	return received{}, fmt.Errorf("%w at index %d term %d in %s", ErrNoSnapshot, index, term, s.opts.IngestDir)
}

// removeReceived removes every received snapshot at or below upTo: it is
// installed, or superseded by the state (raft never installs a snapshot
// at or below its commit index). Receipts in progress are left alone.
func (s *Store) removeReceived(upTo uint64) error {
	if s.opts.IngestDir == "" {
		return nil
	}
	s.recvMu.Lock()
	defer s.recvMu.Unlock()
	have, err := s.receivedDirs()
	if err != nil {
		return err
	}
	fs := s.ingestFS()
	for _, r := range have {
		if r.index <= upTo {
			if err := fs.RemoveAll(fs.PathJoin(s.opts.IngestDir, r.name())); err != nil {
				return fmt.Errorf("mvcc: remove received snapshot: %w", err)
			}
		}
	}
	return nil
}

// removeLeftovers removes, at Open (after an interrupted restore is
// finished), everything in Options.IngestDir but the received snapshots
// above the applied index: receipts a crash cut off, tables of an older
// release, snapshots installed or superseded. A received snapshot above
// the applied index is kept: the raft log may record it and need it
// installed (raftnode's recoverSnapshot).
func (s *Store) removeLeftovers() error {
	fs, dir := s.ingestFS(), s.opts.IngestDir
	names, err := fs.List(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("mvcc: list %s: %w", dir, err)
	}
	applied := s.appliedIndex()
	for _, n := range names {
		if r, ok := parseReceived(n); ok && r.index > applied {
			continue
		}
		if err := fs.RemoveAll(fs.PathJoin(dir, n)); err != nil {
			return fmt.Errorf("mvcc: remove %s in %s: %w", n, dir, err)
		}
	}
	return nil
}

func (s *Store) appliedIndex() uint64 {
	i, _ := s.Applied()
	return i
}

// makeDurableDir creates dir if needed and syncs its parent, so that the
// directory survives a crash once its own entries are synced.
func makeDurableDir(fs vfs.FS, dir string) error {
	if _, err := fs.Stat(dir); err == nil {
		return nil
	}
	if err := fs.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("mvcc: create %s: %w", dir, err)
	}
	if err := durable.SyncDir(fs, fs.PathDir(dir)); err != nil {
		return fmt.Errorf("mvcc: create %s: %w", dir, err)
	}
	return nil
}
