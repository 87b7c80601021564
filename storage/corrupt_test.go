package storage

import (
	"errors"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/raft/v3"

	"github.com/synod-db/synod/record"
)

// rawGet returns a copy of the raw stored value under key.
func rawGet(t *testing.T, db *pebble.DB, key []byte) []byte {
	t.Helper()
	v, closer, err := db.Get(key)
	if err != nil {
		t.Fatalf("Get(%x): %v", key, err)
	}
	defer closer.Close()
	return append([]byte(nil), v...)
}

// flipBit rewrites the value under key with one bit flipped, bypassing Seal.
func flipBit(t *testing.T, db *pebble.DB, key []byte, byteIdx int) {
	t.Helper()
	v := rawGet(t, db, key)
	v[byteIdx%len(v)] ^= 0x10
	if err := db.Set(key, v, pebble.Sync); err != nil {
		t.Fatal(err)
	}
}

// corruptDB returns a database holding a store with entries 1..10.
func corruptDB(t *testing.T) *pebble.DB {
	t.Helper()
	db := memDB(t)
	s := mustOpen(t, db)
	if err := s.Save(mkHS(1, 1, 5), ents(1, 10, 1), true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateSnapshot(3, confState(1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(2); err != nil {
		t.Fatal(err)
	}
	return db
}

// TestCorruptEntryNotServed flips a bit at every position of a stored entry
// and checks Entries and Term report record.ErrCorrupt instead of serving it.
func TestCorruptEntryNotServed(t *testing.T) {
	n := len(rawGet(t, corruptDB(t), logKey(5)))
	for pos := 0; pos < n; pos++ {
		db := corruptDB(t)
		flipBit(t, db, logKey(5), pos)
		s := mustOpen(t, db)
		for _, r := range [][2]uint64{{5, 6}, {3, 11}, {4, 6}} {
			if got, err := s.Entries(r[0], r[1], ^uint64(0)); !errors.Is(err, record.ErrCorrupt) {
				t.Fatalf("byte %d: Entries(%d, %d) = %v, %v; want ErrCorrupt", pos, r[0], r[1], got, err)
			}
		}
		if _, err := s.Term(5); !errors.Is(err, record.ErrCorrupt) {
			t.Fatalf("byte %d: Term(5) = %v, want ErrCorrupt", pos, err)
		}
		// Entries that do not include 5 are still served.
		if got, err := s.Entries(6, 11, ^uint64(0)); err != nil || len(got) != 5 {
			t.Fatalf("byte %d: Entries(6, 11) = %d entries, %v", pos, len(got), err)
		}
	}
}

// TestCorruptLogShape: holes, misplaced values and corrupt ends of the log.
func TestCorruptLogShape(t *testing.T) {
	t.Run("hole", func(t *testing.T) {
		db := corruptDB(t)
		if err := db.Delete(logKey(6), pebble.Sync); err != nil {
			t.Fatal(err)
		}
		s := mustOpen(t, db)
		for _, r := range [][2]uint64{{4, 9}, {5, 7}, {6, 7}} {
			if _, err := s.Entries(r[0], r[1], ^uint64(0)); !errors.Is(err, record.ErrCorrupt) {
				t.Fatalf("Entries(%d, %d) across a hole: %v, want ErrCorrupt", r[0], r[1], err)
			}
		}
		if _, err := s.Term(6); !errors.Is(err, record.ErrCorrupt) {
			t.Fatalf("Term of a hole: %v, want ErrCorrupt", err)
		}
	})
	t.Run("value under another key", func(t *testing.T) {
		db := corruptDB(t)
		if err := db.Set(logKey(7), rawGet(t, db, logKey(6)), pebble.Sync); err != nil {
			t.Fatal(err)
		}
		if _, err := mustOpen(t, db).Entries(7, 8, 0); !errors.Is(err, record.ErrCorrupt) {
			t.Fatalf("moved value: %v, want ErrCorrupt", err)
		}
	})
	t.Run("entry below the truncation point", func(t *testing.T) {
		db := corruptDB(t)
		if err := db.Set(logKey(1), rawGet(t, db, logKey(3)), pebble.Sync); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(db); !errors.Is(err, record.ErrCorrupt) {
			t.Fatalf("Open with a stale entry below the truncation point: %v, want ErrCorrupt", err)
		}
	})
	for name, key := range map[string][]byte{
		"first entry": logKey(3), "last entry": logKey(10),
		"hardstate": keyHardState, "snapshot": keySnapshot, "truncation point": keyTruncated,
	} {
		t.Run("Open with corrupt "+name, func(t *testing.T) {
			db := corruptDB(t)
			flipBit(t, db, key, 7)
			if _, err := Open(db); !errors.Is(err, record.ErrCorrupt) {
				t.Fatalf("Open with %x corrupt: %v, want ErrCorrupt", key, err)
			}
		})
	}
}

// TestCorruptionKeepsBoundaryErrors: corruption inside the log does not change
// the answers about its boundaries.
func TestCorruptionKeepsBoundaryErrors(t *testing.T) {
	db := corruptDB(t)
	flipBit(t, db, logKey(5), 9)
	s := mustOpen(t, db)
	if _, err := s.Entries(2, 4, 0); !errors.Is(err, raft.ErrCompacted) {
		t.Fatalf("Entries(2, 4) = %v, want ErrCompacted", err)
	}
	if term, err := s.Term(2); err != nil || term != 1 {
		t.Fatalf("Term(2) = %d, %v", term, err)
	}
}
