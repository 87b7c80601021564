package server

import (
	"testing"

	"github.com/cockroachdb/pebble"
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
