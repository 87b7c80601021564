package statemachine

import (
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/synod-db/synod/alarm"
	"github.com/synod-db/synod/auth"
	"github.com/synod-db/synod/lease"
	"github.com/synod-db/synod/membership"
	"github.com/synod-db/synod/mvcc"
	"github.com/synod-db/synod/raftnode"
)

// Watchers receive the events of every committed revision, in order, and
// are told when the history changed without them (a snapshot was
// restored). watch.Hub implements it. Both run on the raft loop and must
// not block.
type Watchers interface {
	// Notify hands over the events of revision rev, committed.
	Notify(rev int64, evs []*mvccpb.Event)
	// Resync follows a restore: the history changed under the watchers.
	Resync()
}

// Config configures a Machine. Only DB is required.
type Config struct {
	// DB is the member's Pebble database; the Machine does no other I/O
	// but the sstables a snapshot restore writes in IngestDir.
	DB *pebble.DB
	// Clock is the time source of lease expiry; nil means time.Now.
	Clock func() time.Time
	// Logger receives the state changes worth a line (alarms, auth,
	// membership); nil discards them.
	Logger *slog.Logger
	// Watchers receive the events of each committed run; nil: none until
	// SetWatchers.
	Watchers Watchers
	// MaxLearners bounds the learners a configuration change may leave;
	// 0 means membership.DefaultMaxLearners.
	MaxLearners int
	// OnConfChange, if set, is called on the raft loop after a
	// configuration change was applied (the server points its transport
	// at the new membership).
	OnConfChange func(membership.Change)
	// OnRestore, if set, is called after a snapshot was restored, before
	// the watchers resync.
	OnRestore func()
	// ObserveCommit, CompactHashes and CompactionBatch are passed to
	// mvcc.Options.
	ObserveCommit   func(time.Duration)
	CompactHashes   bool
	CompactionBatch int
	// FS and IngestDir are passed to mvcc.Options: the directory, on DB's
	// filesystem (nil: the OS's) and next to it, where a snapshot restore
	// writes the sstables it ingests. Restore needs IngestDir.
	FS        vfs.FS
	IngestDir string
}

// Machine is the state machine of one member (see the package doc). The
// raft loop calls its raftnode.Applier methods, one at a time; the
// accessors and gates are safe for concurrent use.
type Machine struct {
	cfg      Config
	log      *slog.Logger
	kv       *mvcc.Store
	lessor   *lease.Lessor
	auth     *auth.Store
	alarms   *alarm.Set
	members  *membership.Store
	watchers Watchers
	// leaseKeys is what the auth gate asks for a lease's keys.
	leaseKeys auth.LeaseKeys
}

var _ raftnode.Applier = (*Machine)(nil)

// Open loads the state stored in cfg.DB (an empty database is an empty
// state) and returns the Machine applying to it.
func Open(cfg Config) (*Machine, error) {
	if cfg.DB == nil {
		return nil, fmt.Errorf("statemachine: no database")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxLearners == 0 {
		cfg.MaxLearners = membership.DefaultMaxLearners
	}
	m := &Machine{cfg: cfg, log: cfg.Logger, watchers: cfg.Watchers}
	m.lessor = lease.New(lease.Config{Clock: cfg.Clock})
	m.leaseKeys = leaseKeysOf(m.lessor)
	var err error
	if m.kv, err = mvcc.Open(cfg.DB, mvcc.Options{LeaseExists: m.lessor.Exists, ObserveCommit: cfg.ObserveCommit,
		CompactHashes: cfg.CompactHashes, CompactionBatch: cfg.CompactionBatch,
		FS: cfg.FS, IngestDir: cfg.IngestDir}); err != nil {
		return nil, err
	}
	if err := m.load(); err != nil {
		m.kv.Close()
		return nil, err
	}
	return m, nil
}

// load reads every store but mvcc's from the database, at open.
func (m *Machine) load() error {
	db := m.cfg.DB
	var err error
	if m.members, err = membership.Load(db); err != nil {
		return err
	}
	if m.alarms, err = alarm.Load(db); err != nil {
		return err
	}
	if m.auth, err = auth.Load(db); err != nil {
		return err
	}
	return m.loadLeases()
}

// reload rereads every store but mvcc's after a snapshot restore.
func (m *Machine) reload() error {
	db := m.cfg.DB
	for _, reload := range []func() error{
		func() error { return m.members.Reload(db) },
		func() error { return m.alarms.Reload(db) },
		func() error { return m.auth.Reload(db) },
		m.loadLeases,
	} {
		if err := reload(); err != nil {
			return err
		}
	}
	return nil
}

// loadLeases (re)builds the lessor from the lease records and mvcc's lease
// index, which lists the attached keys (mvcc.Store.LeasedKeys): a restart
// reads the leased keys, not the store. With no lease there is nothing to
// attach to, and an index left incomplete by an older release is simply
// emptied.
func (m *Machine) loadLeases() error {
	recs, err := lease.ReadRecords(m.cfg.DB)
	if err != nil {
		return fmt.Errorf("statemachine: read leases: %w", err)
	}
	scan := m.kv.LeasedKeys
	if len(recs) == 0 {
		if err := m.kv.ClearLeaseIndex(); err != nil {
			return fmt.Errorf("statemachine: lease index: %w", err)
		}
		scan = nil
	}
	if err := m.lessor.Load(recs, scan); err != nil {
		return fmt.Errorf("statemachine: attach leased keys: %w", err)
	}
	return nil
}

// SetWatchers sets the watchers the events of later runs go to, for
// watchers built on the Machine's own KV (watch.NewHub(m.KV(), ...)). Call
// it before the raft loop starts.
func (m *Machine) SetWatchers(w Watchers) { m.watchers = w }

// KV is the revisioned keyspace (reads, hashes, snapshots).
func (m *Machine) KV() *mvcc.Store { return m.kv }

// Lessor is the lease state.
func (m *Machine) Lessor() *lease.Lessor { return m.lessor }

// Auth is the replicated auth state.
func (m *Machine) Auth() *auth.Store { return m.auth }

// Alarms are the raised alarms.
func (m *Machine) Alarms() *alarm.Set { return m.alarms }

// Members is the replicated membership.
func (m *Machine) Members() *membership.Store { return m.members }

// Close closes the keyspace (its background compactor). The database
// stays open: it belongs to the caller.
func (m *Machine) Close() error { return m.kv.Close() }

// Applied is the last raft entry reflected in the state.
func (m *Machine) Applied() (uint64, uint64) { return m.kv.Applied() }

// NewSnapshot captures the state for streaming to a peer.
func (m *Machine) NewSnapshot() raftnode.Snapshot { return m.kv.NewSnapshot() }

// ReceiveSnapshot turns a snapshot stream, while it arrives, into the
// verified tables Restore ingests (mvcc.Store.ReceiveSnapshot).
func (m *Machine) ReceiveSnapshot(index, term uint64, body io.Reader) error {
	return m.kv.ReceiveSnapshot(index, term, body)
}

// Sync makes every apply that has returned durable: the applies commit
// unsynced, and one sync of the database's write-ahead log covers them
// all (raftnode calls it before it truncates the raft log).
func (m *Machine) Sync() error {
	if err := m.cfg.DB.LogData(nil, pebble.Sync); err != nil {
		return fmt.Errorf("statemachine: sync: %w", err)
	}
	return nil
}

// Restore replaces the state with the received snapshot at index/term and
// reloads every store from it; then OnRestore runs and the watchers resync.
func (m *Machine) Restore(index, term uint64) error {
	if err := m.kv.Restore(index, term); err != nil {
		return err
	}
	if err := m.reload(); err != nil {
		return err
	}
	if m.cfg.OnRestore != nil {
		m.cfg.OnRestore()
	}
	if m.watchers != nil {
		m.watchers.Resync()
	}
	return nil
}
