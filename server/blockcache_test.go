package server

import (
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

func TestBlockBudget(t *testing.T) {
	for _, c := range []struct{ db, want int64 }{
		{0, blockCacheBytes},
		{100 << 20, blockCacheBytes}, // a small store keeps the base budget
		{1 << 30, 32 << 20},
		{4 << 30, 128 << 20},
		{100 << 30, maxBlockCacheBytes},
	} {
		if got := blockBudget(c.db); got != c.want {
			t.Errorf("blockBudget(%d) = %d, want %d", c.db, got, c.want)
		}
	}
}

// TestCacheBudgetBoundsTheCache reads a database holding more blocks than
// the base budget through a real Pebble cache, and checks that what the
// cache keeps stays within the budget, grows once the budget is raised and
// shrinks back when it is lowered.
func TestCacheBudgetBoundsTheCache(t *testing.T) {
	b := newCacheBudget()
	o := stateOptions(b.cache)
	db, err := openWith(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	value := make([]byte, 4<<10) // incompressible: the blocks are as large as the data
	for i := range 12 << 10 {    // 48 MiB of values
		rand.Read(value)
		if err := db.Set(fmt.Appendf(nil, "\x10key%08d", i), value, pebble.NoSync); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	const slack = 1 << 20 // a shard may hold a block over its share
	for _, step := range []struct {
		dbBytes  int64
		min, max int64
	}{
		{0, 0, blockCacheBytes + slack},
		{1 << 30, 24 << 20, 32<<20 + slack}, // 32 MiB of blocks
		{0, 0, blockCacheBytes + slack},
	} {
		b.resize(step.dbBytes)
		if got := b.blockBytes(); got != blockBudget(step.dbBytes) {
			t.Fatalf("budget for %d bytes = %d, want %d", step.dbBytes, got, blockBudget(step.dbBytes))
		}
		for range 2 { // the second pass finds what the first one left cached
			scanAll(t, db)
		}
		if size := db.Metrics().BlockCache.Size; size < step.min || size > step.max {
			t.Errorf("database of %d bytes: the cache holds %d bytes of blocks, want %d to %d",
				step.dbBytes, size, step.min, step.max)
		}
	}
}

// scanAll reads every key and value of db.
func scanAll(t *testing.T, db *pebble.DB) {
	t.Helper()
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	for it.First(); it.Valid(); it.Next() {
		_ = it.Value()
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
}

// blockBytes is the room for blocks the budget leaves now, from the
// reservations it holds.
func (b *cacheBudget) blockBytes() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return maxBlockCacheBytes - int64(len(b.held))*blockCacheChunk
}
