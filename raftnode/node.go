package raftnode

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/synod-db/synod/storage"
)

// Applier is the member's state machine. Only the raft loop calls it, one
// call at a time. Every call that applies entries must store the last
// entry's index and term as the applied position atomically with the state
// it changes, so that a restart never applies an entry twice. A returned
// error is fatal: the member stops.
type Applier interface {
	// Applied is the last raft entry reflected in the state.
	Applied() (index, term uint64)
	// Apply applies reqs, a run of consecutive committed normal entries in
	// log order, all above Applied, filling res[i] for reqs[i]. It is the
	// one apply path: a single entry is a run of one. An entry without
	// data (a new leader's empty entry, or a ConfChangeV2 raft applied
	// itself) comes with a nil Req and only advances the applied position.
	// Nothing of the run may be visible to readers before it returns.
	Apply(reqs []Request, res []Result) error
	// ApplyConfChange validates a membership change against the state and
	// applies it, before raft does. A change it rejects leaves the
	// membership alone, is answered with Result.Err, and must be recorded
	// (with the applied index) so that ConfChangeRejected reports it after
	// a restart; raft then sees it with node ID 0. A returned error is fatal.
	ApplyConfChange(index, term uint64, cc *raftpb.ConfChange) (Result, error)
	// ConfChangeRejected reports whether the conf change entry at index,
	// already applied before a restart, was rejected.
	ConfChangeRejected(index uint64) (bool, error)
	// NewSnapshot captures the state at this instant for streaming to a peer.
	NewSnapshot() Snapshot
	// ReceiveSnapshot stores the stream of the snapshot at index/term, as
	// the leader sent it, verified end to end, before raft is allowed to
	// see it: an error leaves nothing behind. Unlike the other methods it
	// runs on the goroutine receiving the stream, concurrently with them.
	// The state machine, not raftnode, keeps a received snapshot, in its
	// own form: it builds what Restore installs while the stream arrives
	// (the stream is never written to a file and read back), so raftnode
	// hands it the stream and later names the snapshot to install.
	ReceiveSnapshot(index, term uint64, body io.Reader) error
	// Restore replaces the state with the snapshot at index/term that
	// ReceiveSnapshot stored, durably: when it returns, a crash no longer
	// takes the state back before it. What ReceiveSnapshot stored stays
	// until then, so that a restart can redo an interrupted Restore.
	Restore(index, term uint64) error
	// Sync makes durable every change of state that Apply and
	// ApplyConfChange have returned from (their writes are not synced one
	// by one). The raft log is a store of its own, so nothing else orders
	// the state's writes before the log's: the raft loop calls Sync before
	// it records a snapshot and truncates the log behind it, so that a
	// crash never leaves the state behind the start of the log
	// (storage's package documentation, "Durability").
	Sync() error
}

// Request is a committed normal entry at its raft position, decoded for
// Applier.Apply; Req is nil for an entry without data.
type Request struct {
	Index, Term uint64
	Req         *etcdserverpb.InternalRaftRequest
}

// Snapshot is a point-in-time copy of the state being streamed to a peer.
// WriteTo may run on another goroutine; Close releases it.
type Snapshot interface {
	Index() uint64
	Term() uint64
	io.WriterTo
	Close() error
}

// Config configures a Node.
type Config struct {
	// ID is this member's raft ID (non-zero).
	ID uint64
	// Peers bootstraps a new cluster when the log is empty and Join is false.
	// Every founding member must pass identical Peers (IDs and Contexts).
	Peers []raft.Peer
	// Join starts with an empty log and waits for the leader to send state.
	Join bool
	// ElectionTicks and HeartbeatTicks are raft's timeouts in ticks.
	ElectionTicks, HeartbeatTicks int
	// TickInterval is the wall-clock length of one tick; ignored if Ticks is set.
	TickInterval time.Duration
	// Ticks, if set, drives raft's clock instead of a wall-clock ticker
	// (tests and deterministic simulation).
	Ticks <-chan struct{}
	// SnapshotCount is the number of applied entries between snapshots.
	SnapshotCount uint64
	// SnapshotCatchUpEntries is how many entries are kept behind a snapshot
	// so slightly-lagging followers catch up without a full snapshot.
	SnapshotCatchUpEntries uint64
	// RequestTimeout caps how long a proposal may wait to be applied.
	RequestTimeout time.Duration
	// Log is the durable raft log.
	Log *storage.LogStore
	// LogDir names where Log is kept (its database's directory), for
	// error messages only; empty in tests.
	LogDir string
	// Applier is the state machine committed entries are applied to.
	Applier Applier
	// SnapDir is where an older release kept received snapshot files;
	// NewCore removes any left there (the Applier keeps received
	// snapshots now).
	SnapDir string
	// Logger receives operational messages; nil discards them.
	Logger *slog.Logger
	// Now is the clock request IDs are seeded from; nil is time.Now.
	Now func() time.Time
}

// Node is one member's raft loop: a goroutine shell around a Core. Its
// request methods (Propose, ReadIndex, status accessors) are safe for
// concurrent use; Handler methods are called by the transport. Everything
// the loop does to raft and to the state happens in the Core's step
// methods, which the deterministic simulation calls directly.
type Node struct {
	c *Core

	propc   chan *proposal
	readc   chan *readRequest
	recvc   chan *raftpb.Message
	unreach chan uint64
	snapc   chan snapStatus
	ctrlc   chan func(*raft.RawNode)
	stopc   chan struct{}
	done    chan struct{}
	stopMu  sync.Once
	fatal   atomic.Pointer[error]
}

// Stats are counters of notable raft events since the member started.
type Stats struct {
	SnapshotsSent      uint64
	SnapshotsInstalled uint64
	LeaderChanges      uint64
	// ProposalsFailed counts Propose calls that returned an error (no
	// leader, timeout, overload, stop): etcd_server_proposals_failed_total.
	ProposalsFailed uint64
	// ProposalsPending is the number of proposals waiting to be applied.
	ProposalsPending int
}

// Stats returns the member's raft event counters.
func (n *Node) Stats() Stats {
	return Stats{
		SnapshotsSent:      n.c.stats.snapsSent.Load(),
		SnapshotsInstalled: n.c.stats.snapsInstalled.Load(),
		LeaderChanges:      n.c.stats.leaderChanges.Load(),
		ProposalsFailed:    n.c.stats.proposalsFailed.Load(),
		ProposalsPending:   n.c.wait.len(),
	}
}

type snapStatus struct {
	to     uint64
	failed bool
}

// New creates a Node over cfg.Log and cfg.Applier (NewCore). Call Start to
// begin the loop.
func New(cfg Config) (*Node, error) {
	c, err := NewCore(cfg)
	if err != nil {
		return nil, err
	}
	return &Node{
		c:       c,
		propc:   make(chan *proposal, 4096),
		readc:   make(chan *readRequest, 4096),
		recvc:   make(chan *raftpb.Message, 4096),
		unreach: make(chan uint64, 256),
		snapc:   make(chan snapStatus, 16),
		ctrlc:   make(chan func(*raft.RawNode), 16),
		stopc:   make(chan struct{}),
		done:    make(chan struct{}),
	}, nil
}

func setDefaults(cfg *Config) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ElectionTicks == 0 {
		cfg.ElectionTicks = 10
	}
	if cfg.HeartbeatTicks == 0 {
		cfg.HeartbeatTicks = 1
	}
	if cfg.TickInterval == 0 {
		cfg.TickInterval = 100 * time.Millisecond
	}
	if cfg.SnapshotCount == 0 {
		cfg.SnapshotCount = 10000
	}
	if cfg.SnapshotCatchUpEntries == 0 {
		cfg.SnapshotCatchUpEntries = 5000
	}
	if cfg.SnapshotCatchUpEntries > cfg.SnapshotCount {
		cfg.SnapshotCatchUpEntries = cfg.SnapshotCount
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 5*time.Second + 2*time.Duration(cfg.ElectionTicks)*cfg.TickInterval
	}
}

// Start begins the raft loop, sending through tr.
func (n *Node) Start(tr Sender) {
	n.c.tr = tr
	go n.run()
}

// Stop ends the raft loop and fails every waiting request with ErrStopped.
// It is safe to call more than once.
func (n *Node) Stop() {
	n.stopMu.Do(func() { close(n.stopc) })
	<-n.done
}

// Done is closed once the loop has exited (after Stop or a fatal error).
func (n *Node) Done() <-chan struct{} { return n.done }

// Err returns the fatal error that stopped the loop, if any.
func (n *Node) Err() error {
	if p := n.fatal.Load(); p != nil {
		return *p
	}
	return nil
}

// ID is this member's raft ID.
func (n *Node) ID() uint64 { return n.c.cfg.ID }

// Leader is the current leader's ID, or 0 when none is known.
func (n *Node) Leader() uint64 { return n.c.Leader() }

// Term is the current raft term.
func (n *Node) Term() uint64 { return n.c.term.Load() }

// CommitIndex is raft's commit index as last published by the loop.
func (n *Node) CommitIndex() uint64 { return n.c.commit.Load() }

// AppliedIndex is the last applied entry.
func (n *Node) AppliedIndex() uint64 { return n.c.AppliedIndex() }

// IsLeader reports whether this member is the leader.
func (n *Node) IsLeader() bool { return n.c.IsLeader() }

// LeaderChanged returns a channel closed at the next change of leader.
func (n *Node) LeaderChanged() <-chan struct{} { return *n.c.leaderCh.Load() }

// Status returns raft's full status, computed on the raft loop.
func (n *Node) Status(ctx context.Context) (raft.Status, error) {
	var st raft.Status
	err := n.onLoop(ctx, func(rn *raft.RawNode) { st = rn.Status() })
	return st, err
}

// TransferLeadership asks raft to hand leadership to the member transferee.
func (n *Node) TransferLeadership(ctx context.Context, transferee uint64) error {
	return n.onLoop(ctx, func(rn *raft.RawNode) { rn.TransferLeader(transferee) })
}

// onLoop runs fn on the raft loop and waits for it.
func (n *Node) onLoop(ctx context.Context, fn func(*raft.RawNode)) error {
	done := make(chan struct{})
	wrapped := func(rn *raft.RawNode) { fn(rn); close(done) }
	select {
	case n.ctrlc <- wrapped:
	case <-ctx.Done():
		return ctx.Err()
	case <-n.done:
		return ErrStopped
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-n.done:
		return ErrStopped
	}
}
