package server

import (
	"log/slog"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// openMemberDB opens the member's database under DataDir with the disk
// flags applied: --wal-dir puts Pebble's write-ahead log (where the raft
// log's appends are made durable) in its own directory, and
// --unsafe-no-fsync turns every fsync into a no-op. Pebble's fatal errors
// (a failed WAL or MANIFEST write or sync) are logged to log before the
// process exits. A database written by a release built on Pebble v1 is
// upgraded first (upgradeIfV1).
func openMemberDB(c *Config, log *slog.Logger) (*pebble.DB, error) {
	dir := filepath.Join(c.DataDir, "db")
	if err := upgradeIfV1(c, dir, log); err != nil {
		return nil, err
	}
	o := pebbleOptions()
	defer o.Cache.Unref() // the DB took its own reference, or failed to open
	o.Logger = memberPebbleLogger{log}
	o.EventListener = memberEvents(memberPebbleLogger{log})
	if c.FS != nil {
		o.FS = c.FS
	}
	if c.WALDir != "" {
		o.WALDir = c.WALDir
	}
	if c.UnsafeNoFsync {
		o.FS = noSyncFS{o.FS}
	}
	return pebble.Open(dir, o)
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
