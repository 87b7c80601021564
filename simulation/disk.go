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
// of which only what was synced survives the member's crash, and the
// member's two real Pebble databases opened on it, as a member has them
// (docs/architecture.md#two-pebble-databases-per-member): db, on which
// the state machine opens its stores, and logDB, the raft log's. A crash
// drops the unsynced writes of both, so the order of their syncs
// (raftnode's Applier.Sync before a log truncation) is what is tested.
type disk struct {
	fs    *vfs.MemFS
	db    *pebble.DB
	logDB *pebble.DB
	log   *storage.LogStore
	sm    io.Closer // the state machine opened on db, closed before it
}

// newDisk returns an empty disk; open it before use. The database
// directories are created and synced up front, as an installer would: Pebble
// syncs what it creates inside a directory, not the directory's own entry.
func newDisk() (*disk, error) {
	fs := vfs.NewCrashableMem()
	for _, dir := range []string{"db", "raftlog"} {
		if err := fs.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("simulation: create %s dir: %w", dir, err)
		}
	}
	root, err := fs.OpenDir("/")
	if err != nil {
		return nil, fmt.Errorf("simulation: open root dir: %w", err)
	}
	return &disk{fs: fs}, errors.Join(root.Sync(), root.Close())
}

// open opens the state database, the raft log's database and the raft
// log in it.
func (d *disk) open() error {
	opts := d.options()
	mvcc.SetKeyLayout(opts) // the member's comparer and filters: the lookup path that ships
	var err error
	if d.db, err = pebble.Open("db", opts); err != nil {
		return fmt.Errorf("simulation: open pebble: %w", err)
	}
	if d.logDB, err = pebble.Open("raftlog", d.options()); err != nil {
		return errors.Join(fmt.Errorf("simulation: open the raft log's pebble: %w", err), d.closeDB())
	}
	if d.log, err = storage.Open(d.logDB); err != nil {
		return errors.Join(err, d.closeDB())
	}
	return nil
}

// options are the Pebble options of both databases.
func (d *disk) options() *pebble.Options {
	return &pebble.Options{
		FS: d.fs,
		// Large enough that a run never flushes a memtable: a flush is
		// started by a background goroutine, and would make what survives a
		// crash depend on goroutine timing.
		MemTableSize:                4 << 20,
		DisableAutomaticCompactions: true,
		Logger:                      quietLogger{},
	}
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

// closeDB closes both databases, the raft log's first.
func (d *disk) closeDB() error {
	var err error
	for _, db := range []**pebble.DB{&d.logDB, &d.db} {
		if *db != nil {
			err = errors.Join(err, (*db).Close())
			*db = nil
		}
	}
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
