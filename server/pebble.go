package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"

	"github.com/synod-db/synod/etcdlog"
	"github.com/synod-db/synod/mvcc"
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

// bloomBitsPerKey sizes the sstables' bloom filters: 10 bits per user key,
// a 1 % false-positive rate, about 1.2 bytes per key on disk and, when
// read, in the block cache.
const bloomBitsPerKey = 10

// pebbleOptions tunes Pebble for synod's load: small, frequent synced
// batches (raft log appends) interleaved with unsynced apply batches, and a
// log keyspace that is written once and deleted in ranges. The caller owns
// the returned Cache reference: openPebble releases it once the DB holds its
// own.
//
// mvcc.Comparer (Pebble's bytewise order and name, with a Split at the end
// of a version key's user key) and a bloom filter per sstable let a put's
// lookup of its key's previous version skip every table that has no version
// of the key: without them each put of a new key read an index and a data
// block of the overlapping table in every level (docs/performance.md,
// "Scale"). Tables written before carry no filter and are simply read.
func pebbleOptions() *pebble.Options {
	o := &pebble.Options{
		Comparer:                    mvcc.Comparer,
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
		o.Levels[i].FilterPolicy = bloom.FilterPolicy(bloomBitsPerKey)
		o.Levels[i].FilterType = pebble.TableFilter
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

// quietLogger drops Pebble's informational chatter but keeps fatal errors
// (Pebble's own line, then exit 1); for databases opened outside a member
// (snapshot restore).
type quietLogger struct{}

func (quietLogger) Infof(string, ...interface{}) {}
func (quietLogger) Fatalf(format string, args ...interface{}) {
	pebble.DefaultLogger.Fatalf(format, args...)
}

// msgDiskFatal is the member's last log line when Pebble cannot go on.
const msgDiskFatal = "the database cannot continue after a failed disk write or sync; " +
	"stopping the member (never retried: the kernel may have dropped the unwritten data)"

// memberPebbleLogger is the member's Pebble logger. Informational chatter
// is dropped. Fatalf is how Pebble v1.1 reports what it cannot survive: a
// failed write or fsync of its WAL (db.go: "pebble: fatal commit error"; the
// log writer's error is sticky, so no later commit would succeed either) or
// of its MANIFEST, and broken invariants. The batch whose commit failed has
// not been acknowledged (Fatalf does not return to the committer), so the
// member logs one fatal line in its own log format and exits 1, as etcd
// does when its WAL cannot be saved. A restart recovers from what reached
// the disk (docs/verification.md#disk-faults).
type memberPebbleLogger struct{ log *slog.Logger }

func (memberPebbleLogger) Infof(string, ...interface{}) {}

func (l memberPebbleLogger) Fatalf(format string, args ...interface{}) {
	l.log.Log(context.Background(), etcdlog.LevelFatal, msgDiskFatal, "err", fmt.Sprintf(format, args...))
	os.Exit(1)
}

// memberEvents reports Pebble's background trouble in the member's log,
// which Pebble would only pass to Infof. A background error (a flush or
// compaction that failed; Pebble retries it) is logged; one that is ENOSPC
// is fatal as a failed commit is: with no space a memtable cannot be
// flushed, writes stall behind it and the raft loop with them, so the
// member would hang serving nothing. It stops instead, and starts again
// once there is space. Write stalls are logged too.
func memberEvents(l memberPebbleLogger) *pebble.EventListener {
	return &pebble.EventListener{
		BackgroundError: func(err error) {
			if errors.Is(err, syscall.ENOSPC) {
				l.Fatalf("pebble: background error: %v", err)
			}
			l.log.Error("database background error (retried)", "err", err)
		},
		WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
			l.log.Warn("database writes stalled", "reason", info.Reason)
		},
		WriteStallEnd: func() { l.log.Info("database writes resumed") },
	}
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
