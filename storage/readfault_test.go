package storage

import (
	"errors"
	"math"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// A raft log read that the disk fails (errorfs on the sstables' reads, no
// block cache to hide them) returns an error wrapping ErrRead, which the
// raft loop stops the member on, and the injected error; no entry is
// served. The failure is not remembered: once the disk reads again, so
// does the log.
func TestEntriesReadErrorIsErrRead(t *testing.T) {
	armed := new(atomic.Bool)
	fs := errorfs.Wrap(vfs.NewMem(), errorfs.InjectorFunc(func(op errorfs.Op) error {
		if armed.Load() && op.Kind.ReadOrWrite() == errorfs.OpIsRead && strings.HasSuffix(op.Path, ".sst") {
			return errorfs.ErrInjected
		}
		return nil
	}))
	db := openUncached(t, fs)
	if err := mustOpen(t, db).Save(mkHS(1, 1, 10), ents(1, 10, 1), true); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(db.Flush(), db.Close()); err != nil {
		t.Fatal(err)
	}
	db = openUncached(t, fs)
	defer db.Close()
	s := mustOpen(t, db)
	armed.Store(true)
	got, err := s.Entries(1, 11, math.MaxUint64)
	if !errors.Is(err, ErrRead) || !errors.Is(err, errorfs.ErrInjected) || len(got) != 0 {
		t.Fatalf("Entries on a failing disk = %d entries, %v; want none and ErrRead wrapping the injected error", len(got), err)
	}
	armed.Store(false)
	if got, err = s.Entries(1, 11, math.MaxUint64); err != nil || len(got) != 10 {
		t.Fatalf("Entries once the disk reads again = %d entries, %v", len(got), err)
	}
}

// openUncached opens "db" on fs with no block cache, so every read of a
// table reaches the filesystem.
func openUncached(t *testing.T, fs vfs.FS) *pebble.DB {
	t.Helper()
	c := pebble.NewCache(0)
	defer c.Unref()
	db, err := pebble.Open("db", &pebble.Options{FS: fs, Logger: quietLogger{}, Cache: c, EventListener: readErrors()})
	if err != nil {
		t.Fatal(err)
	}
	return db
}
