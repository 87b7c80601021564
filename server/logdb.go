package server

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/synod-db/synod/internal/durable"
	"github.com/synod-db/synod/metrics"
	"github.com/synod-db/synod/storage"
)

// logDBName is the directory of the raft log's database: under DataDir,
// or under --wal-dir when it is set, since the raft log is what etcd
// keeps there (docs/architecture.md#two-pebble-databases-per-member).
const logDBName = "raftlog"

// Sizing of the raft log's database. Every entry is deleted (a range
// deletion behind each raft snapshot) soon after it is written; in a
// memtable larger than the entries kept between two truncations
// (SnapshotCount plus SnapshotCatchUpEntries: up to 15,000 entries by
// default, about 5 MiB for the benchmark's 256-byte puts) most entries are
// deleted before it is flushed, and the flush drops them, so the log is
// written about once, to its WAL, instead of being flushed and compacted
// down the levels with the state. A memtable's arena becomes resident as it
// fills, and Pebble keeps a flushed one for reuse (there is no option to
// turn that off), so each MiB here is two of resident memory per member.
// Measured (docs/performance.md, "The raft log in its own store" and
// "Memory on a small store"), bytes written per byte loaded of 256-byte
// puts, one member: 5.4-5.8 with the log in the state's database; 4.4-4.8 with 8 MiB
// memtables; 4.0 with 16 or 32 MiB. 4 MiB is used for memory: the goal is
// no more memory than etcd at any size, and after 100k small keys the
// three members were 1.21x etcd's with 8 MiB. 4 MiB holds about 12,000 of
// those entries, so more of each flush is live: the three members wrote
// 13.6 bytes per byte loaded against 11.3 with 8 MiB, for 8 MiB less
// resident per member, the same CPU per put, and 4 x 4.4 MiB less WAL
// space preallocated. At most two are
// queued before writes stall (a flush of this database writes little), and
// as many WAL files are kept for recycling. The memtables are charged
// against the database's own cache, as the state's are (pebbleOptions):
// two memtables and a small budget for the blocks a lagging follower's
// catch-up reads. The cache is an accounting bound, not an allocation.
const (
	logMemTableSize    = 4 << 20
	logBlockCacheBytes = 4 << 20
	logCacheBytes      = 2*logMemTableSize + logBlockCacheBytes
)

// Level 0 of the raft log's database (docs/performance.md, "The raft log
// database's compactions"). An entry is
// deleted up to SnapshotCount plus SnapshotCatchUpEntries entries after it
// is written (15,000 by default), which for 1 KiB puts is four or five
// flushes later. With Pebble's default (a compaction at 4 sublevels) a
// flushed table was compacted into the level below before its range
// deletion was flushed, and was read and written once more when it was.
// At 12 sublevels most of a compaction's entries are deleted by a newer
// table of the same compaction and are dropped unwritten. Writes stop at
// twice that.
const (
	logL0CompactionThreshold = 12
	logL0StopWritesThreshold = 2 * logL0CompactionThreshold
)

// logDBDir is where the member's raft log database lives.
func logDBDir(c *Config) string {
	if c.WALDir != "" {
		return filepath.Join(c.WALDir, logDBName)
	}
	return filepath.Join(c.DataDir, logDBName)
}

// logDBOptions tunes Pebble for the raft log: synced appends of sealed
// entries under increasing keys, read back mostly from storage's tail
// cache, and deleted in ranges. Keys are looked up by index or scanned in
// order, never probed for absence, so the tables carry no bloom filter,
// and the default comparer is used (the keys have no versions). The
// caller owns the returned Cache reference.
func logDBOptions() *pebble.Options {
	o := &pebble.Options{
		Cache:                       pebble.NewCache(logCacheBytes),
		MemTableSize:                logMemTableSize,
		MemTableStopWritesThreshold: 2,
		L0CompactionThreshold:       logL0CompactionThreshold,
		L0StopWritesThreshold:       logL0StopWritesThreshold,
		FormatMajorVersion:          storeFormat,
		Logger:                      quietLogger{},
		EventListener:               &pebble.EventListener{DataCorruption: quietLogger{}.corruption},
	}
	o.EnsureDefaults()
	return o
}

// openLogPebble opens (or creates) a raft log database at dir with
// logDBOptions, for use outside a running member (snapshot restore).
func openLogPebble(dir string) (*pebble.DB, error) { return openWith(dir, logDBOptions()) }

// openLogDB opens (or creates) the raft log's database of the member whose
// state database is state, moving the log out of state first if it is
// still kept there (moveLogOut). Its write stalls are counted in stalls.
func openLogDB(c *Config, state *pebble.DB, log *slog.Logger, stalls *metrics.WriteStalls) (*pebble.DB, error) {
	o := memberOptions(logDBOptions(), c, log, stalls)
	defer o.Cache.Unref() // the DB took its own reference, or failed to open
	dir := logDBDir(c)
	if err := moveLogOut(o, state, dir, log); err != nil {
		return nil, err
	}
	_, statErr := o.FS.Stat(dir)
	if err := checkLogDirExists(o.FS, c, state, dir); err != nil {
		return nil, err
	}
	db, err := pebble.Open(dir, o)
	if err != nil || statErr == nil {
		return db, err
	}
	return db, sealFirstWAL(db)
}

// sealFirstWAL flushes a log database just created, so that its entries go
// to a second WAL file. Pebble creates a database's first WAL at its oldest
// format and raises the format after, so that file carries no synced
// offsets (FormatWALSyncChunks), without which replay cannot tell damage
// in the newest WAL from a torn tail and drops every record after it,
// synced ones included (docs/security.md, "Known limits"). The flush makes
// the first file empty and obsolete.
func sealFirstWAL(db *pebble.DB) error {
	if err := db.Flush(); err != nil {
		return errors.Join(fmt.Errorf("server: flush the new raft log database: %w", err), db.Close())
	}
	return nil
}

// ErrLogMissing is returned when a member's state exists but its raft log's
// database does not where this start looks for it: started with another
// --wal-dir than the one the data directory was made with, or the
// directory was removed. Starting on an empty log would make the member
// bootstrap as if restored from a snapshot, over a state that is ahead of
// it.
var ErrLogMissing = errors.New("server: the raft log of this data directory is missing")

// checkLogDirExists refuses a member whose state holds its identity (it
// was bootstrapped, so its raft log was created) while dir, its log's
// database, does not exist.
func checkLogDirExists(fsys vfs.FS, c *Config, state *pebble.DB, dir string) error {
	if _, err := fsys.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if _, err := readIdentity(state); errors.Is(err, errNoIdentity) {
		return nil
	} else if err != nil {
		return err
	}
	hint := "start it with the --wal-dir it was created with"
	if other := filepath.Join(c.DataDir, logDBName); c.WALDir != "" && other != dir {
		if _, err := fsys.Stat(other); err == nil {
			hint = fmt.Sprintf("it is in %s: move it to %s, or start without --wal-dir", other, dir)
		}
	}
	return fmt.Errorf("%w: %s does not exist, though %s holds this member's state; %s, "+
		"or remove the member and add it back with an empty data directory", ErrLogMissing, dir, c.DataDir, hint)
}

// moveLogOut moves a raft log kept in the state database (every data
// directory made before the log had a database of its own) into a new
// database at dir, opened with o. Each step can be cut short by a crash
// and is done again at the next start: the log is copied into dir+".tmp"
// (removed first if a crash left it) and synced; that directory is
// renamed to dir and the rename synced, so dir exists only once it holds
// the whole log; then the log's keys are deleted from the state, synced.
// If dir exists, it holds the log, and any log key still in the state is
// a copy left by a crash before that last step.
func moveLogOut(o *pebble.Options, state *pebble.DB, dir string, log *slog.Logger) error {
	inState, err := storage.HasLog(state)
	if err != nil || !inState {
		return err
	}
	_, err = o.FS.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		err = copyLogInto(o, state, dir)
		if err == nil {
			log.Info("moved the raft log out of the state database into a database of its own; "+
				"releases that keep the log with the state can no longer open this data directory", "dir", dir)
		}
	}
	if err != nil {
		return fmt.Errorf("server: move the raft log to %s: %w", dir, err)
	}
	return storage.DropLog(state)
}

// copyLogInto writes state's raft log into a new database at dir, through
// a temporary directory renamed into place once the copy is durable.
func copyLogInto(o *pebble.Options, state *pebble.DB, dir string) error {
	tmp := dir + ".tmp"
	if err := o.FS.RemoveAll(tmp); err != nil {
		return err
	}
	if err := o.FS.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return err
	}
	db, err := pebble.Open(tmp, o)
	if err != nil {
		return err
	}
	err = storage.CopyLog(db, state)
	if err = errors.Join(err, db.Close()); err != nil {
		return err
	}
	if err := o.FS.Rename(tmp, dir); err != nil {
		return err
	}
	return durable.SyncDir(o.FS, filepath.Dir(dir))
}
