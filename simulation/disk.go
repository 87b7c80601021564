package simulation

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"

	"github.com/synod-db/synod/mvcc"
	"github.com/synod-db/synod/storage"
)

// disk is one member's durable state: a strict in-memory filesystem that
// keeps only what was synced when the member crashes, and the real Pebble
// database, raft log and mvcc store opened on it.
type disk struct {
	fs    *vfs.MemFS
	db    *pebble.DB
	log   *storage.LogStore
	store *mvcc.Store
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

// open opens the database, the raft log and the mvcc store; leaseExists
// is the store's lease check (nil: no lease exists).
func (d *disk) open(leaseExists func(int64) bool) error {
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
	if d.store, err = mvcc.Open(db, mvcc.Options{LeaseExists: leaseExists}); err != nil {
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

// close closes the store and the database (not the filesystem).
func (d *disk) close() error {
	var err error
	if d.store != nil {
		err = d.store.Close()
	}
	d.store, d.log = nil, nil
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
