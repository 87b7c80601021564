package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"

	"github.com/cockroachdb/pebble/v2"

	"github.com/synod-db/synod/etcdlog"
	"github.com/synod-db/synod/metrics"
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
	// memtables are live: all of it outside a member, a member's base
	// budget, which grows with its database (cacheBudget).
	blockCacheBytes = 8 << 20
	cacheBytes      = 2*memTableSize + blockCacheBytes
)

// L0 sizing. A flush of an 8 MiB memtable of etcd-shaped puts is a table of
// a few MiB that spans the whole key space (keys arrive in no order), so it
// overlaps every table of the base level below, which holds at least
// LBaseMaxBytes, and each flush is a sublevel of L0 of its own. An L0
// compaction therefore rewrites the whole base level to move what L0 holds:
// at 4 sublevels about 64 MiB rewritten for 6 MiB moved, a write
// amplification of 10 at that step alone, and compactions were half of a
// member's CPU per put once the store held 1 GiB (docs/performance.md, "The
// put at size"). Letting L0 collect l0CompactionFiles sublevels before it is
// compacted divides that rewrite by eight. The price is read amplification in
// L0: a point read or a put's previous-version lookup consults up to that
// many more bloom filters, and a scan merges that many more tables. From 16
// to 32 (an A/B at 2 GiB, docs/performance.md, "Level 0 at 32 sublevels"):
// 0.77x the members' CPU per put on the empty store's 150,000 puts, 0.81x
// in the load step and 0.84x for the put at 2 GiB, compactions included;
// one-key reads 1.13x (serializable) and 0.93x (linearizable), a scan 0.89x.
// An A/A run of that A/B resolves about 13 % of CPU on the write rows
// ("An A/A run"): the direction is sure, the size within that.
// Writes stop at four times that many sublevels (before: 24 at 4, 64 at 16).
const (
	l0CompactionFiles = 32
	l0StopWritesFiles = 4 * l0CompactionFiles
)

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
//
// Pebble v2 kept the meaning of the memtable, cache, L0 and LBase options
// (memtables are still charged against the block cache). What moved:
// the per-level TargetFileSize is now Options.TargetFileSizes, indexed from
// Lbase rather than by absolute level (the same 16 MiB everywhere, so the
// same files); MaxConcurrentCompactions (v1: one compaction, plus one more
// while L0 read amplification or compaction debt is high) is now
// CompactionConcurrencyRange, whose (1, 2) is that same rule; and new stores
// are created at storeFormat instead of Pebble's oldest format.
func pebbleOptions() *pebble.Options { return stateOptions(pebble.NewCache(cacheBytes)) }

// stateOptions is pebbleOptions with cache c (a member's grows with its
// database: cacheBudget). The caller's reference to c passes to the
// returned options.
func stateOptions(c *pebble.Cache) *pebble.Options {
	o := &pebble.Options{
		Cache:                       c,
		MemTableSize:                memTableSize,
		MemTableStopWritesThreshold: 4,
		L0CompactionThreshold:       l0CompactionFiles,
		L0StopWritesThreshold:       l0StopWritesFiles,
		LBaseMaxBytes:               64 << 20,
		CompactionConcurrencyRange:  func() (int, int) { return 1, 2 },
		FormatMajorVersion:          storeFormat,
		Logger:                      quietLogger{},
		EventListener:               &pebble.EventListener{DataCorruption: quietLogger{}.corruption},
	}
	for i := range o.Levels {
		o.Levels[i].BlockSize = mvcc.BlockSize
		o.TargetFileSizes[i] = 16 << 20
	}
	mvcc.SetKeyLayout(o)
	o.EnsureDefaults()
	return o
}

// openPebble opens (or creates) the member's state database at dir with
// pebbleOptions.
func openPebble(dir string) (*pebble.DB, error) { return openWith(dir, pebbleOptions()) }

// openWith opens (or creates) a database at dir with o, outside a running
// member, and releases the caller's reference to o.Cache.
func openWith(dir string, o *pebble.Options) (*pebble.DB, error) {
	defer o.Cache.Unref() // the DB took its own reference, or failed to open
	return pebble.Open(dir, o)
}

// quietLogger drops Pebble's informational chatter but keeps errors and
// fatal errors (Pebble's own line; a fatal one then exits 1); for databases
// opened outside a member (snapshot restore).
type quietLogger struct{}

func (quietLogger) Infof(string, ...interface{}) {}
func (quietLogger) Errorf(format string, args ...interface{}) {
	pebble.DefaultLogger.Errorf(format, args...)
}
func (quietLogger) Fatalf(format string, args ...interface{}) {
	pebble.DefaultLogger.Fatalf(format, args...)
}

// corruption reports a block that failed its checksum as an error line.
// Pebble v2 calls Fatalf for it unless told otherwise; v1 only returned the
// error to the read, and so does synod still (record.ErrCorrupt, refused
// with etcd's "data corruption" errors; docs/verification.md#disk-faults).
func (l quietLogger) corruption(info pebble.DataCorruptionInfo) { l.Errorf("%s", info) }

// msgDiskFatal is the member's last log line when Pebble cannot go on.
const msgDiskFatal = "the database cannot continue after a failed disk write or sync; " +
	"stopping the member (never retried: the kernel may have dropped the unwritten data)"

// memberPebbleLogger is the member's Pebble logger. Informational chatter
// is dropped; Errorf (a trouble Pebble survives, such as an obsolete file it
// could not delete) is an error line in the member's log. Fatalf is how
// Pebble reports what it cannot survive: a
// failed write or fsync of its WAL (db.go: "pebble: fatal commit error"; the
// log writer's error is sticky, so no later commit would succeed either) or
// of its MANIFEST, and broken invariants. The batch whose commit failed has
// not been acknowledged (Fatalf does not return to the committer), so the
// member logs one fatal line in its own log format and exits 1, as etcd
// does when its WAL cannot be saved. A restart recovers from what reached
// the disk (docs/verification.md#disk-faults).
type memberPebbleLogger struct{ log *slog.Logger }

func (memberPebbleLogger) Infof(string, ...interface{}) {}

func (l memberPebbleLogger) Errorf(format string, args ...interface{}) {
	l.log.Error("database error", "err", fmt.Sprintf(format, args...))
}

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
// once there is space. Write stalls are logged too, and so is a block that
// failed its checksum (Pebble v2 would otherwise exit through Fatalf; the
// read that found it fails with record.ErrCorrupt, as with v1), and
// counted in stalls (synod_pebble_write_stalls_total; nil counts nothing).
func memberEvents(l memberPebbleLogger, stalls *metrics.WriteStalls) *pebble.EventListener {
	return &pebble.EventListener{
		DataCorruption: func(info pebble.DataCorruptionInfo) {
			l.log.Error("database corruption found by a read (the read fails)", "err", info.String())
		},
		BackgroundError: func(err error) {
			if errors.Is(err, syscall.ENOSPC) {
				l.Fatalf("pebble: background error: %v", err)
			}
			l.log.Error("database background error (retried)", "err", err)
		},
		WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
			stalls.Begin()
			l.log.Warn("database writes stalled", "reason", info.Reason)
		},
		WriteStallEnd: func() {
			stalls.End()
			l.log.Info("database writes resumed")
		},
	}
}

// flushOnStop writes the memtables of both databases to sstables at a
// clean stop, so that a restart replays no WAL (a faster start) and all
// data at rest sits in sstable blocks, each checked against its checksum
// whenever it is read. The raft log's memtable holds mostly entries
// already deleted, which the flush drops.
func (m *Member) flushOnStop() {
	for _, db := range []*pebble.DB{m.db, m.logDB} {
		if db == nil {
			continue
		}
		if err := db.Flush(); err != nil {
			m.log.Warn("flush at stop", "err", err)
		}
	}
}
