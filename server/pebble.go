package server

import (
	"github.com/cockroachdb/pebble"
)

// pebbleOptions tunes Pebble for synod's load: small, frequent synced
// batches (raft log appends) interleaved with unsynced apply batches, and a
// log keyspace that is written once and deleted in ranges.
func pebbleOptions() *pebble.Options {
	o := &pebble.Options{
		MemTableSize:                64 << 20,
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
