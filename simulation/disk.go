package simulation

import (
	"errors"
	"fmt"
	"io"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/synod-db/synod/mvcc"
	"github.com/synod-db/synod/storage"
)

// disk is one member's durable state: a crashable in-memory filesystem
// of which only what was synced survives the member's crash, and the real Pebble
// database and raft log opened on it (the state machine opens its stores
// on the same database).
type disk struct {
	fs  *vfs.MemFS
	db  *pebble.DB
	log *storage.LogStore
	sm  io.Closer // the state machine opened on db, closed before it
}

// newDisk returns an empty disk; open it before use. The database
// directory is created and synced up front, as an installer would: Pebble
// syncs what it creates inside the directory, not the directory's own entry.
func newDisk() (*disk, error) {
	fs := vfs.NewCrashableMem()
	if err := fs.MkdirAll("db", 0o755); err != nil {
		return nil, fmt.Errorf("simulation: create db dir: %w", err)
	}
	root, err := fs.OpenDir("/")
	if err != nil {
		return nil, fmt.Errorf("simulation: open root dir: %w", err)
	}
	return &disk{fs: fs}, errors.Join(root.Sync(), root.Close())
}

// open opens the database and the raft log.
func (d *disk) open() error {
	opts := &pebble.Options{
		FS: d.fs,
		// Large enough that a run never flushes a memtable: a flush is
		// started by a background goroutine, and would make what survives a
		// crash depend on goroutine timing.
		MemTableSize:                4 << 20,
		DisableAutomaticCompactions: true,
		Logger:                      quietLogger{},
	}
	mvcc.SetKeyLayout(opts) // the member's comparer and filters: the lookup path that ships
	db, err := pebble.Open("db", opts)
	if err != nil {
		return fmt.Errorf("simulation: open pebble: %w", err)
	}
	d.db = db
	if d.log, err = storage.Open(db); err != nil {
		return errors.Join(err, d.closeDB())
	}
	return nil
}

// crash loses every write that was not synced, as a power failure would:
// the disk goes on as a copy of exactly what was synced at this instant
// (Pebble's CrashClone, with no unsynced data kept), and the database is
// then torn down on the old filesystem, so nothing it does while closing
// reaches the new one.
func (d *disk) crash() {
	synced := d.fs.CrashClone(vfs.CrashCloneCfg{})
	_ = d.close()
	d.fs = synced
}

// close closes the state machine and the database (not the filesystem).
func (d *disk) close() error {
	var err error
	if d.sm != nil {
		err = d.sm.Close()
	}
	d.sm, d.log = nil, nil
	return errors.Join(err, d.closeDB())
}

func (d *disk) closeDB() error {
	if d.db == nil {
		return nil
	}
	err := d.db.Close()
	d.db = nil
	return err
}

// quietLogger drops Pebble's chatter and the errors it survives (the
// checks judge the outcome); a fatal error panics the run.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("simulation: pebble: "+format, args...))
}
