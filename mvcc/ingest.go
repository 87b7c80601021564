package mvcc

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// restoreTableBytes bounds the size of one sstable a Restore writes: large
// enough that a 1 GiB state is a handful of files, small enough that each
// lands whole in one level and compacts like any other table.
const restoreTableBytes = 64 << 20

// BlockSize is the data block size of a member's sstables, on every level
// (server/pebble.go) and in the tables a Restore writes. With Pebble's
// default, 4 KiB, the tables of the scale benchmark's 0.5 GiB of 1 KiB
// values were 202 MB instead of 79 MB (fewer values per block to compress
// together), and ingested tables in the last level are not rewritten.
const BlockSize = 32 << 10

// tableWriter streams sorted records into a sequence of sstables of at most
// about limit bytes each, in dir on fs, written with the database's key
// layout (Comparer, bloom filters, key schema) in the table format it
// accepts. Every file is synced when it is finished.
type tableWriter struct {
	fs    vfs.FS
	dir   string
	opts  sstable.WriterOptions
	limit uint64
	w     *sstable.Writer
	paths []string
	// below is whether the open table holds keys below the restore marker:
	// no table spans the marker, which is in the memtable while the tables
	// are ingested, so every table can land below L0.
	below bool
}

// newTableWriter prepares a writer of tables in format f into dir.
func newTableWriter(fs vfs.FS, dir string, f sstable.TableFormat, limit int) *tableWriter {
	o := &pebble.Options{}
	SetKeyLayout(o)
	o.EnsureDefaults()
	wo := o.MakeWriterOptions(0, f)
	wo.BlockSize = BlockSize
	return &tableWriter{fs: fs, dir: dir, opts: wo, limit: uint64(limit)}
}

// add appends one record; keys must be strictly increasing across calls.
func (t *tableWriter) add(k, v []byte) error {
	if t.below && bytes.Compare(k, metaRestore) > 0 {
		if err := t.finish(); err != nil {
			return err
		}
	}
	if t.w == nil {
		if err := t.create(); err != nil {
			return err
		}
	}
	if err := t.w.Set(k, v); err != nil {
		return fmt.Errorf("mvcc: restore table: %w", err)
	}
	t.below = bytes.Compare(k, metaRestore) < 0
	if t.w.Raw().EstimatedSize() < t.limit {
		return nil
	}
	return t.finish()
}

// create starts the next table file.
func (t *tableWriter) create() error {
	p := t.fs.PathJoin(t.dir, tableName(len(t.paths)))
	f, err := t.fs.Create(p, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("mvcc: create restore table: %w", err)
	}
	t.paths = append(t.paths, p)
	t.w = sstable.NewWriter(objstorageprovider.NewFileWritable(f), t.opts)
	return nil
}

// finish completes (and syncs) the table being written, if any.
func (t *tableWriter) finish() error {
	if t.w == nil {
		return nil
	}
	err := t.w.Close()
	t.w, t.below = nil, false
	if err != nil {
		return fmt.Errorf("mvcc: finish restore table: %w", err)
	}
	return nil
}

// abort closes the table being written, if any, discarding its error: the
// caller removes the directory.
func (t *tableWriter) abort() {
	if t.w != nil {
		_ = t.w.Close()
		t.w = nil
	}
}

// tableName is the file name of the i-th table a restore writes.
func tableName(i int) string { return fmt.Sprintf("%06d.sst", i) }

// ErrNoIngestDir is returned by ReceiveSnapshot and Restore (before they
// change anything) on a store opened without Options.IngestDir.
var ErrNoIngestDir = errors.New("mvcc: restore needs Options.IngestDir")

// ingest ingests the tables of tabs through hard links in a subdirectory
// (Pebble removes what it ingests), so that the tables themselves stay
// until the restore's final batch: a crash before it redoes the ingest
// from them.
func (s *Store) ingest(tabs *restoreTables) error {
	if len(tabs.paths) == 0 {
		return nil
	}
	fs := s.ingestFS()
	links := fs.PathJoin(tabs.dir, "ingest")
	if err := fs.RemoveAll(links); err != nil {
		return fmt.Errorf("mvcc: restore ingest: %w", err)
	}
	if err := fs.MkdirAll(links, 0o700); err != nil {
		return fmt.Errorf("mvcc: restore ingest: %w", err)
	}
	paths := make([]string, len(tabs.paths))
	for i, p := range tabs.paths {
		paths[i] = fs.PathJoin(links, fs.PathBase(p))
		if err := vfs.LinkOrCopy(fs, p, paths[i]); err != nil {
			return fmt.Errorf("mvcc: restore ingest: %w", err)
		}
	}
	if err := s.db.Ingest(context.Background(), paths); err != nil {
		return fmt.Errorf("mvcc: restore ingest: %w", err)
	}
	return nil
}

// ingestFS is Options.FS, or the OS's filesystem.
func (s *Store) ingestFS() vfs.FS {
	if s.opts.FS == nil {
		return vfs.Default
	}
	return s.opts.FS
}
