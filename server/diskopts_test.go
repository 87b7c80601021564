package server

import (
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// countingFS counts the syncs that reach it.
type countingFS struct {
	vfs.FS
	syncs *int
}

func (fs countingFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, c)
	return countingFile{f, fs.syncs}, err
}

type countingFile struct {
	vfs.File
	syncs *int
}

func (f countingFile) Sync() error { *f.syncs++; return f.File.Sync() }

// --unsafe-no-fsync: a sync through noSyncFS never reaches the file system.
func TestNoSyncFSDropsSyncs(t *testing.T) {
	var n int
	under := countingFS{vfs.NewMem(), &n}
	for name, fs := range map[string]vfs.FS{"plain": under, "no-sync": noSyncFS{under}} {
		n = 0
		f, err := fs.Create(name, vfs.WriteCategoryUnspecified)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		if full, err := f.SyncTo(1); name == "no-sync" && (err != nil || !full) {
			t.Fatalf("%s: SyncTo = %v, %v; want a full sync reported (so Pebble does not Sync after it)", name, full, err)
		}
		_ = f.Close()
		if want := map[string]int{"plain": 1, "no-sync": 0}[name]; n != want {
			t.Errorf("%s: %d syncs reached the file system, want %d", name, n, want)
		}
	}
}

// --wal-dir and --unsafe-no-fsync together: the WAL lands in its own
// directory and a reopened database reads what was written.
func TestMemberDBWithWALDir(t *testing.T) {
	c := &Config{DataDir: t.TempDir(), WALDir: filepath.Join(t.TempDir(), "wal"), UnsafeNoFsync: true}
	db, _, err := openMemberDB(c, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set([]byte("k"), []byte("v"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if logs, _ := filepath.Glob(filepath.Join(c.WALDir, "*.log")); len(logs) == 0 {
		t.Fatalf("no WAL file in %s", c.WALDir)
	}
	if logs, _ := filepath.Glob(filepath.Join(c.DataDir, "db", "*.log")); len(logs) != 0 {
		t.Fatalf("WAL files in the data directory too: %v", logs)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db, _, err = openMemberDB(c, slog.New(slog.DiscardHandler), nil); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	v, closer, err := db.Get([]byte("k"))
	if err != nil || string(v) != "v" {
		t.Fatalf("after reopening: %q, %v", v, err)
	}
	closer.Close()
}
