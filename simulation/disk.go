package simulation

import (
	"errors"
	"fmt"
	"io"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"

	"github.com/synod-db/synod/storage"
)

// disk is one member's durable state: a strict in-memory filesystem that
// keeps only what was synced when the member crashes, and the real Pebble
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
	fs := vfs.NewStrictMem()
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
// syncs are ignored while the database is torn down, then the filesystem
// goes back to its last synced state.
func (d *disk) crash() {
	d.fs.SetIgnoreSyncs(true)
	_ = d.close()
	d.fs.ResetToSyncedState()
	d.fs.SetIgnoreSyncs(false)
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

// quietLogger drops Pebble's chatter; a fatal error panics the run.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("simulation: pebble: "+format, args...))
}
