package raftnode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Sender is what a Core needs of the network: transport.Transport in
// production, the simulated network in the simulation.
type Sender interface {
	// Send queues msgs for their destinations and returns at once.
	Send(msgs []*raftpb.Message)
	// SendSnapshot streams m (a MsgSnap) and then body to m.To, and calls
	// done when it is over; the receiver reports back through
	// Core.ReportSnapshot.
	SendSnapshot(m *raftpb.Message, body io.WriterTo, done func(error))
}

// Core is one member's consensus step, without goroutines: a raft.RawNode
// and every side effect raft asks for (persist, send, apply, snapshot,
// ReadIndex release, configuration change), as plain methods over the
// durable log (storage.LogStore), the Applier and a Sender. Node, the
// goroutine shell, calls them from its loop in production; the
// deterministic simulation calls the same methods from its scheduler. Its
// step methods must be called from one goroutine at a time; the published
// state (Leader, IsLeader, AppliedIndex and Node's accessors) and the
// waiters are safe to read from any.
type Core struct {
	cfg  Config
	log  *slog.Logger
	rn   *raft.RawNode
	tr   Sender
	idg  *idGenerator
	wait *waiters
	aw   appliedWait

	// Step-owned state.
	confState     *raftpb.ConfState
	snapIndex     uint64
	appliedIndex  uint64
	appliedTerm   uint64
	reads         readBatches
	sendingSnaps  int
	prevHardState *raftpb.HardState // the latest raft gave
	// savedHardState is the latest written; its commit may lag
	// (hardStateToSave).
	savedHardState *raftpb.HardState
	// durable is the last log index this member has fsynced (by a Save of
	// entries, or a snapshot install) since it started: committed entries
	// up to it may be applied before the next Save (durableRun).
	durable    uint64
	ccExpected map[uint64]struct{} // conf changes stepped as leader, not yet seen in a Ready

	// Published for other goroutines.
	lead    atomic.Uint64
	term    atomic.Uint64
	commit  atomic.Uint64
	lastIdx atomic.Uint64
	// appliedTermPub is the term of the last applied entry.
	appliedTermPub atomic.Uint64
	isLeader       atomic.Bool
	leaderCh       atomic.Pointer[chan struct{}]
	stats          struct{ snapsSent, snapsInstalled, leaderChanges, proposalsFailed atomic.Uint64 }
}

// NewCore creates a Core over cfg.Log and cfg.Applier. It finishes an
// interrupted snapshot install, then starts raft from the stored state
// (bootstrapping cfg.Peers on an empty log unless cfg.Join). SetSender must
// be called before the first step.
func NewCore(cfg Config) (*Core, error) {
	if cfg.ID == 0 {
		return nil, errors.New("raftnode: member ID must not be zero")
	}
	setDefaults(&cfg)
	c := &Core{cfg: cfg, log: cfg.Logger, idg: newIDGenerator(cfg.ID, cfg.Now()), wait: newWaiters()}
	ch := make(chan struct{})
	c.leaderCh.Store(&ch)
	if err := c.recoverSnapshot(); err != nil {
		return nil, err
	}
	c.removeOldSnapshotFiles()
	if err := c.startRaft(); err != nil {
		return nil, err
	}
	return c, nil
}

// SetSender sets the network the Core sends through.
func (c *Core) SetSender(tr Sender) { c.tr = tr }

// Tick advances raft's clock by one tick and re-issues read rounds that
// went unanswered.
func (c *Core) Tick() {
	c.rn.Tick()
	c.retryReads()
}

// Step hands raft a message received from a peer. A MsgSnap must have been
// stored with StoreSnapshot first.
func (c *Core) Step(m *raftpb.Message) { c.step(m) }

// ReportUnreachable tells raft that a message to id could not be sent.
func (c *Core) ReportUnreachable(id uint64) { c.rn.ReportUnreachable(id) }

// ReportSnapshot tells raft how sending a snapshot to id ended.
func (c *Core) ReportSnapshot(id uint64, failed bool) {
	c.reportSnapshot(snapStatus{to: id, failed: failed})
}

// StoreSnapshot has the Applier store a received snapshot stream durably
// and verify it end to end (Applier.ReceiveSnapshot), so raft only ever
// sees complete, intact snapshots. It does not touch raft and may run on
// any goroutine.
func (c *Core) StoreSnapshot(m *raftpb.Message, body io.Reader) error {
	return c.storeSnapshot(m, body)
}

// Advance handles everything raft has ready, in the order raft requires
// (handleReady), until it has nothing more: the one place where the state
// changes. Read rounds waiting are issued first and after each Ready; conf
// changes the leader dropped are answered at the end. A returned error is
// fatal to the member.
func (c *Core) Advance() error {
	c.issueReads()
	for c.rn.HasReady() {
		if err := c.handleReady(c.rn.Ready()); err != nil {
			return err
		}
		// A round answered in that Ready frees the way for the reads
		// that queued behind it.
		c.issueReads()
	}
	c.failDroppedConfChanges()
	return nil
}

// ProposeAsync stamps req with a fresh request ID (keeping the caller's
// identity), steps it into raft and returns the channel its Result arrives
// on once it is applied here. ErrNoLeader if raft drops it at once.
func (c *Core) ProposeAsync(req *etcdserverpb.InternalRaftRequest) (<-chan Result, error) {
	p, err := c.newProposal(context.Background(), req)
	if err != nil {
		return nil, err
	}
	ch := c.wait.register(p.id)
	c.stepProposals([]*proposal{p})
	return ch, nil
}

// ProposeConfChangeAsync steps a membership change into raft and returns
// the channel its Result arrives on once it is applied here (or dropped).
func (c *Core) ProposeConfChangeAsync(cc *raftpb.ConfChange) <-chan Result {
	id := c.idg.next()
	cc.Id = &id
	ch := c.wait.register(id)
	c.stepConfChange(&proposal{ctx: context.Background(), id: id, cc: cc})
	return ch
}

// ReadIndexAsync joins the reads waiting for the next ReadIndex round and
// returns the channel its read index (or error) arrives on. The read is
// linearizable once AppliedIndex reaches that index.
func (c *Core) ReadIndexAsync() <-chan ReadResult {
	r := &readRequest{ctx: context.Background(), ch: make(chan ReadResult, 1)}
	c.reads.pending = append(c.reads.pending, r)
	return r.ch
}

// Close fails every waiting proposal and read with err, as a stop does.
func (c *Core) Close(err error) {
	c.failAllReads(err)
	c.wait.failAll(err)
	c.aw.stop()
	c.lead.Store(0)
	c.isLeader.Store(false)
}

// Leader is the leader's ID as this member last saw it, or 0.
func (c *Core) Leader() uint64 { return c.lead.Load() }

// IsLeader reports whether this member leads.
func (c *Core) IsLeader() bool { return c.isLeader.Load() }

// AppliedIndex is the last applied entry.
func (c *Core) AppliedIndex() uint64 { return c.aw.get() }

// RaftStatus is raft's full status; call it between steps.
func (c *Core) RaftStatus() raft.Status { return c.rn.Status() }

// startRaft opens raft over the stored state.
func (c *Core) startRaft() error {
	hs, cs, err := c.cfg.Log.InitialState()
	if err != nil {
		return fmt.Errorf("raftnode: read initial state: %w", err)
	}
	snap, err := c.cfg.Log.Snapshot()
	if err != nil {
		return fmt.Errorf("raftnode: read snapshot metadata: %w", err)
	}
	c.snapIndex = snap.GetMetadata().GetIndex()
	c.confState = cs
	c.appliedIndex, c.appliedTerm = c.cfg.Applier.Applied()
	if err := c.checkLogCoversState(hs); err != nil {
		return err
	}
	if hs, err = c.commitApplied(hs); err != nil {
		return err
	}
	c.prevHardState, c.savedHardState = hs, hs
	c.aw.advance(c.appliedIndex)
	rc := &raft.Config{
		ID:                        c.cfg.ID,
		ElectionTick:              c.cfg.ElectionTicks,
		HeartbeatTick:             c.cfg.HeartbeatTicks,
		Storage:                   c.cfg.Log,
		Applied:                   c.snapIndex, // entries after the snapshot are replayed; Apply skips those already applied
		MaxSizePerMsg:             1 << 20,
		MaxCommittedSizePerReady:  8 << 20,
		MaxUncommittedEntriesSize: 1 << 30,
		MaxInflightMsgs:           4096 / 8,
		CheckQuorum:               true,
		PreVote:                   true,
		ReadOnlyOption:            raft.ReadOnlySafe,
		Logger:                    raftLogger{c.log, c.logBehind},
		StepDownOnRemoval:         true,
	}
	rn, err := raft.NewRawNode(rc)
	if err != nil {
		return fmt.Errorf("raftnode: start raft: %w", err)
	}
	c.rn = rn
	last, _ := c.cfg.Log.LastIndex()
	if last == 0 && c.snapIndex == 0 && !c.cfg.Join {
		if len(c.cfg.Peers) == 0 {
			return errors.New("raftnode: a new cluster needs at least one peer to bootstrap")
		}
		if err := rn.Bootstrap(c.cfg.Peers); err != nil {
			return fmt.Errorf("raftnode: bootstrap: %w", err)
		}
	}
	return nil
}

// commitApplied raises the stored commit index to the applied index where
// it lags behind it (and the log holds the entries), before raft starts.
// The commit index is stored lazily (hardStateToSave) and the state is
// synced on its own (Applier.Sync), so a crash can leave the state applied
// past the stored commit. Every applied entry was committed, and its log
// entry was durable before it was applied and cannot have changed since,
// so the raise is safe; without it raft would replay the entries between
// as not yet applied while the Core counts them applied, and a log
// truncation computed from the Core's index could remove entries raft has
// still to hand out.
func (c *Core) commitApplied(hs *raftpb.HardState) (*raftpb.HardState, error) {
	last, err := c.cfg.Log.LastIndex()
	if err != nil {
		return nil, fmt.Errorf("raftnode: read last index: %w", err)
	}
	commit := min(c.appliedIndex, last)
	if raft.IsEmptyHardState(hs) || hs.GetCommit() >= commit {
		return hs, nil
	}
	hs = &raftpb.HardState{Term: proto.Uint64(hs.GetTerm()), Vote: proto.Uint64(hs.GetVote()), Commit: proto.Uint64(commit)}
	if err := c.cfg.Log.Save(hs, nil, true); err != nil {
		return nil, fmt.Errorf("raftnode: raise the stored commit index to the applied index %d: %w", commit, err)
	}
	return hs, nil
}

// TransferLeader asks raft to hand leadership to the member to (a no-op
// unless this member leads and to is a voter).
func (c *Core) TransferLeader(to uint64) { c.rn.TransferLeader(to) }
