package server

import (
	"github.com/cockroachdb/pebble"
)

// Pebble sizing. Pebble charges every live memtable (the mutable one and
// the one kept for recycling, or one being flushed) against the block cache,
// so the cache must be sized for two memtables plus the blocks it is meant to
// hold: with Pebble's default 8 MiB cache and a 64 MiB memtable the
// reservation exceeded the cache and no block was ever cached, so every read
// of an sstable (index, range-deletion and data blocks) was a pread and a
// decompression, for reads and for every put's previous-version lookup.
//
// The sizes trade memory for write batching. Measured on the issue-5 bench
// (100k keys of 256 B, 3 members): 64 MiB memtables and a 32 MiB block
// budget gave 1.3x etcd's RSS, 16 MiB and 8 MiB 1.17x, 8 MiB and 8 MiB
// 1.0x, with put throughput and CPU per put the same within the noise
// (smaller skiplists are cheaper to search and insert into, which offsets
// the extra flushes). See docs/performance.md, changes 7 and 11.
const (
	memTableSize = 8 << 20
	// blockCacheBytes is what is left for sstable blocks while two
	// memtables are live.
	blockCacheBytes = 8 << 20
	cacheBytes      = 2*memTableSize + blockCacheBytes
)

// pebbleOptions tunes Pebble for synod's load: small, frequent synced
// batches (raft log appends) interleaved with unsynced apply batches, and a
// log keyspace that is written once and deleted in ranges. The caller owns
// the returned Cache reference: openPebble releases it once the DB holds its
// own.
func pebbleOptions() *pebble.Options {
	o := &pebble.Options{
		Cache:                       pebble.NewCache(cacheBytes),
		MemTableSize:                memTableSize,
		MemTableStopWritesThreshold: 4,
		L0CompactionThreshold:       4,
		L0StopWritesThreshold:       24,
		LBaseMaxBytes:               64 << 20,
		MaxConcurrentCompactions:    func() int { return 2 },
		Logger:                      quietLogger{},
	}
	o.Levels = make([]pebble.LevelOptions, 7)
	for i := range o.Levels {
		o.Levels[i].BlockSize = 32 << 10
		o.Levels[i].TargetFileSize = 16 << 20
	}
	return o.EnsureDefaults()
}

// openPebble opens (or creates) the member's database at dir with
// pebbleOptions.
func openPebble(dir string) (*pebble.DB, error) {
	o := pebbleOptions()
	defer o.Cache.Unref() // the DB took its own reference, or failed to open
	return pebble.Open(dir, o)
}

// quietLogger drops Pebble's informational chatter but keeps fatal errors.
type quietLogger struct{}

func (quietLogger) Infof(string, ...interface{}) {}
func (quietLogger) Fatalf(format string, args ...interface{}) {
	pebble.DefaultLogger.Fatalf(format, args...)
}

// flushOnStop writes the memtables to sstables at a clean stop, so that a
// restart replays no WAL (a faster start) and all data at rest sits in
// sstable blocks, each checked against its checksum whenever it is read.
func (m *Member) flushOnStop() {
	if m.db == nil {
		return
	}
	if err := m.db.Flush(); err != nil {
		m.log.Warn("flush at stop", "err", err)
	}
}
