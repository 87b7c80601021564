package server

import (
	"log/slog"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/synod-db/synod/metrics"
)

// openMemberDB opens the member's state database under DataDir with the
// disk flags applied (memberOptions): --wal-dir puts its Pebble
// write-ahead log in that directory, as before the raft log had a
// database of its own, so a data directory made then opens as it was.
// Pebble's fatal errors (a failed WAL or MANIFEST write or sync) are
// logged to log before the process exits. A database written by a release
// built on Pebble v1 is upgraded first (upgradeIfV1). The raft log is in
// its own database (openLogDB). Its write stalls are counted in stalls
// (nil counts nothing). Its block cache grows with it: the caller passes
// the database's size to the returned budget (cacheBudget.resize).
func openMemberDB(c *Config, log *slog.Logger, stalls *metrics.WriteStalls) (*pebble.DB, *cacheBudget, error) {
	dir := filepath.Join(c.DataDir, "db")
	if err := upgradeIfV1(c, dir, log); err != nil {
		return nil, nil, err
	}
	budget := newCacheBudget()
	o := memberOptions(stateOptions(budget.cache), c, log, stalls)
	defer o.Cache.Unref() // the DB took its own reference, or failed to open
	if c.WALDir != "" {
		o.WALDir = c.WALDir
	}
	db, err := pebble.Open(dir, o)
	return db, budget, err
}

// memberOptions applies to o what every database of a member shares: the
// member's logger and event listener (which counts the database's write
// stalls in stalls), Config.FS, and --unsafe-no-fsync, which turns every
// fsync into a no-op.
func memberOptions(o *pebble.Options, c *Config, log *slog.Logger, stalls *metrics.WriteStalls) *pebble.Options {
	o.Logger = memberPebbleLogger{log}
	o.EventListener = memberEvents(memberPebbleLogger{log}, stalls)
	o.FS = memberFS(c)
	return o
}

// memberFS is the filesystem a member's databases live on: Config.FS or
// the operating system's, with syncs dropped under --unsafe-no-fsync.
func memberFS(c *Config) vfs.FS {
	fs := vfs.Default
	if c.FS != nil {
		fs = c.FS
	}
	if c.UnsafeNoFsync {
		fs = noSyncFS{fs}
	}
	return fs
}

// noSyncFS is a vfs.FS whose files never reach the disk on Sync: what
// etcd's --unsafe-no-fsync does to its WAL and bbolt. A crash can lose
// acknowledged writes.
type noSyncFS struct{ vfs.FS }

func (fs noSyncFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	return wrapNoSync(fs.FS.Create(name, c))
}

func (fs noSyncFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	return wrapNoSync(fs.FS.OpenReadWrite(name, c, opts...))
}

func (fs noSyncFS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	return wrapNoSync(fs.FS.ReuseForWrite(oldname, newname, c))
}

func (fs noSyncFS) OpenDir(name string) (vfs.File, error) {
	return wrapNoSync(fs.FS.OpenDir(name))
}

func wrapNoSync(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return noSyncFile{f}, nil
}

// noSyncFile is a vfs.File whose syncs do nothing.
type noSyncFile struct{ vfs.File }

func (noSyncFile) Sync() error     { return nil }
func (noSyncFile) SyncData() error { return nil }

// SyncTo reports a full sync it did not do, so Pebble does not follow
// with a Sync either.
func (noSyncFile) SyncTo(int64) (bool, error) { return true, nil }
