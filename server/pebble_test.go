package server

import (
	"context"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// TestBlockCacheSurvivesFullMemtable: once the memtable has grown to its
// full size (Pebble doubles it at every rotation), its reservation in the
// block cache must still leave room for blocks. With Pebble's default 8 MiB
// cache and synod's 64 MiB memtable, nothing was ever cached and every
// sstable read went to the file.
func TestBlockCacheSurvivesFullMemtable(t *testing.T) {
	db, err := openPebble(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	key := []byte("k")
	if err := db.Set(key, []byte("v"), pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	// The memtable starts at 256 KiB and doubles at every rotation of a
	// memtable more than half full, up to memTableSize.
	val := make([]byte, 64<<10)
	for i := 0; db.Metrics().MemTable.Size < memTableSize; i++ {
		if i > 4096 {
			t.Fatalf("memtable never reached %d bytes (test setup): %d", memTableSize, db.Metrics().MemTable.Size)
		}
		if err := db.Set([]byte{'x', byte(i >> 8), byte(i)}, val, pebble.NoSync); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	before := db.Metrics().BlockCache
	for i := 0; i < 3; i++ {
		v, closer, err := db.Get(key)
		if err != nil || string(v) != "v" {
			t.Fatalf("Get = %q, %v", v, err)
		}
		closer.Close()
	}
	after := db.Metrics().BlockCache
	if after.Hits <= before.Hits {
		t.Fatalf("block cache: no hits over 3 reads of the same key (before %+v, after %+v)", before, after)
	}
}

// TestInUseExcludesRecycledWALTail: when Pebble reuses a recycled WAL file
// as its current WAL, the file keeps its old length, so an almost empty WAL
// occupies up to a memtable on disk. The size in use must not count that
// tail: it held a member over an 8 MiB quota after its data was compacted
// away (a flake of the e2e maintenance test), with 77 KB of tables left.
func TestInUseExcludesRecycledWALTail(t *testing.T) {
	db, err := openPebble(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	val := make([]byte, 64<<10)
	for i := 0; db.Metrics().WAL.ObsoleteFiles < 2; i++ { // WAL files written and recycled
		if i > 4096 {
			t.Fatalf("no WAL file was recycled (test setup): %+v", db.Metrics().WAL)
		}
		if err := db.Set([]byte{'x', byte(i >> 8), byte(i)}, val, pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.DeleteRange([]byte{'x'}, []byte{'y'}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Compact(context.Background(), []byte{0}, []byte{0xff}, false); err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(); err != nil { // the next WAL is a recycled file
		t.Fatal(err)
	}
	mt := db.Metrics()
	if tail := mt.WAL.PhysicalSize - mt.WAL.Size; tail < 256<<10 {
		t.Fatalf("current WAL has no recycled tail (test setup): %+v", mt.WAL)
	}
	var tables int64
	for _, l := range mt.Levels {
		tables += l.TablesSize
	}
	if got := inUseBytes(mt); got > tables+int64(mt.WAL.Size)+64<<10 {
		t.Fatalf("in use %d bytes with %d bytes of tables and %d live WAL bytes (WAL %+v)", got, tables, mt.WAL.Size, mt.WAL)
	}
}
