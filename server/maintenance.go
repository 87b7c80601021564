package server

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// maxConcurrentBackups bounds the snapshots staged for clients at once (each
// takes disk space the size of the state while it streams); more callers wait.
const maxConcurrentBackups = 2

// backupTmpPattern names the temporary files Snapshot streams from; open
// removes any a crash left behind.
const backupTmpPattern = "backup-*.tmp"

// backupFile is a snapshot stream in a temporary file, removed on Close,
// which also frees its backup slot.
type backupFile struct {
	*os.File
	release func()
}

func (b backupFile) Close() error {
	err := b.File.Close()
	if rerr := os.Remove(b.Name()); err == nil {
		err = rerr
	}
	b.release()
	return err
}

// Snapshot writes a point-in-time copy of the replicated state, in etcd's
// snapshot format (a bbolt database, see writeEtcdSnapshot), to a temporary
// file in the data directory and returns it, read from its start, with its
// size; closing it removes the file. Staging it on disk lets the API
// announce the exact remaining bytes, and frees the Pebble snapshot (which
// pins old data) as soon as possible. At most maxConcurrentBackups are
// staged at once; ctx ending stops the staging.
func (m *Member) Snapshot(ctx context.Context) (io.ReadCloser, int64, error) {
	select {
	case m.backupSlots <- struct{}{}:
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
	release := func() { <-m.backupSlots }
	path, err := m.stageSnapshot(ctx)
	if err != nil {
		release()
		return nil, 0, fmt.Errorf("server: snapshot: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		_ = os.Remove(path)
		release()
		return nil, 0, fmt.Errorf("server: snapshot: %w", err)
	}
	bf := backupFile{File: f, release: release}
	st, err := f.Stat()
	if err != nil {
		bf.Close()
		return nil, 0, fmt.Errorf("server: snapshot: %w", err)
	}
	m.log.Info("snapshot staged for a client", "bytes", st.Size(), "format", "etcd bbolt")
	return bf, st.Size(), nil
}

// stageSnapshot writes the etcd-format snapshot of the state at this
// instant to a new temporary file and returns its path; on failure nothing
// is left behind.
func (m *Member) stageSnapshot(ctx context.Context) (string, error) {
	f, err := os.CreateTemp(m.cfg.DataDir, backupTmpPattern)
	if err != nil {
		return "", err
	}
	path := f.Name()
	if err := f.Close(); err != nil {
		_ = os.Remove(path)
		return "", err
	}
	snap := m.sm.KV().NewSnapshot()
	err = writeEtcdSnapshot(ctx, path, snap)
	if cerr := snap.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return "", err
	}
	return path, nil
}

// removeBackupTmp removes temporary snapshot files a crash left behind.
func (m *Member) removeBackupTmp() {
	old, _ := filepath.Glob(filepath.Join(m.cfg.DataDir, backupTmpPattern))
	for _, p := range old {
		_ = os.Remove(p)
	}
}

// Defragment is etcd's defrag. Pebble is a log-structured merge tree: it
// never leaves free pages inside a file the way bbolt does, so there is
// nothing to defragment; what etcd operators want from defrag is disk space
// back, and that is what this does: a manual compaction of the whole
// database, which flushes the memtable and rewrites every table, dropping
// deleted and overwritten data (old raft log entries, compacted versions).
// Reads and writes go on meanwhile (etcd blocks them).
func (m *Member) Defragment(context.Context) error {
	start := time.Now()
	before := m.dbSize.Load()
	if err := m.sm.KV().CompactAll(); err != nil {
		return fmt.Errorf("server: defragment: %w", err)
	}
	m.sampleDBSize()
	m.log.Info("defragment finished: a full Pebble compaction (an LSM tree needs no defragmentation)",
		"db-size-before", before, "db-size-after", m.dbSize.Load(), "took", time.Since(start))
	return nil
}

// MoveLeader transfers leadership to the voting member target; only the
// leader may (see raftnode.Node.MoveLeader).
func (m *Member) MoveLeader(ctx context.Context, target uint64) error {
	m.log.Info("leadership transfer starting", "target", fmt.Sprintf("%x", target))
	if err := m.node.MoveLeader(ctx, target); err != nil {
		return err
	}
	m.log.Info("leadership transfer finished", "new-leader", fmt.Sprintf("%x", target))
	return nil
}
