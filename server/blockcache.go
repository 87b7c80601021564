package server

import (
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// The state database's block cache grows with the database. A put of a new
// key looks for its previous version with one bloom filter probe per level
// (and per L0 sublevel), and every probe reads the table's filter block
// through the cache. With a fixed 8 MiB budget the filters of a store of
// 10 GiB (about 13 MB per member for 10M keys) no longer fit, so nearly
// every probe became a pread, a calloc and a copy: at 10 GiB that was 29 %
// of the members' CPU and the lookup 48 % (docs/performance.md, "The block
// cache grows with the store"). etcd's equivalent is the page cache its
// bbolt mmap fills, which is the whole file.
//
// Pebble's cache cannot be resized, but it can be reserved: a reservation
// shrinks the room for blocks without taking memory (Pebble reserves its
// memtables the same way). So the cache is made at its largest size, and
// all of it above the base budget is held back in chunks, released as the
// database grows and taken back if it shrinks. Memory is only allocated
// for blocks actually read, so a small store's footprint is unchanged.
const (
	// maxBlockCacheBytes is the most the blocks may take, whatever the
	// database's size: the filters and index blocks of a store of about
	// 100M keys.
	maxBlockCacheBytes = 256 << 20
	// blockCacheShare is the divisor of the database's size in use that
	// gives the block budget (1/32, about 3 %: filters, index blocks and
	// some data blocks of the benchmark's well-compressed values).
	blockCacheShare = 32
	// blockCacheChunk is the size of one reservation, the step the budget
	// moves by.
	blockCacheChunk = 4 << 20
)

// cacheBudget holds back the part of the state database's block cache its
// size does not call for yet. Its methods are safe for concurrent use.
type cacheBudget struct {
	cache *pebble.Cache
	mu    sync.Mutex
	held  []func() // releases of the reservations held, one per chunk
}

// newCacheBudget makes the state database's cache, with room for two
// memtables and maxBlockCacheBytes of blocks, and holds the blocks' room
// down to the base budget (blockCacheBytes). The caller owns the returned
// cache reference.
func newCacheBudget() *cacheBudget {
	b := &cacheBudget{cache: pebble.NewCache(2*memTableSize + maxBlockCacheBytes)}
	b.resize(0)
	return b
}

// blockBudget is the room for blocks a database of dbBytes in use gets.
func blockBudget(dbBytes int64) int64 {
	return min(max(dbBytes/blockCacheShare, blockCacheBytes), maxBlockCacheBytes)
}

// resize sets the room for blocks to blockBudget(dbBytes), rounded up to a
// chunk: it releases held chunks as the database grows and reserves them
// again (evicting blocks) if it shrinks.
func (b *cacheBudget) resize(dbBytes int64) {
	if b == nil { // a database opened outside a member: its cache is fixed
		return
	}
	hold := int((maxBlockCacheBytes - blockBudget(dbBytes)) / blockCacheChunk)
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.held) > hold {
		b.held[len(b.held)-1]()
		b.held = b.held[:len(b.held)-1]
	}
	for len(b.held) < hold {
		b.held = append(b.held, b.cache.Reserve(blockCacheChunk))
	}
}
