package raftnode

import (
	"errors"
	"fmt"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/synod-db/synod/record"
	"github.com/synod-db/synod/storage"
)

// run is the raft loop: the only goroutine that steps n.c. Each turn takes
// what is waiting, steps it into the Core, and lets the Core handle every
// Ready that results (Core.Advance).
func (n *Node) run() {
	defer n.shutdown()
	defer n.recoverCorruption()
	ticks := n.c.cfg.Ticks
	if ticks == nil {
		t := time.NewTicker(n.c.cfg.TickInterval)
		defer t.Stop()
		c := make(chan struct{}, 1)
		go forwardTicks(t.C, c, n.stopc)
		ticks = c
	}
	for {
		select {
		case <-ticks:
			n.c.Tick()
		case m := <-n.recvc:
			n.c.Step(m)
			n.drainReceived()
		case p := <-n.propc:
			n.c.stepProposals(n.drainProposals(p))
		case r := <-n.readc:
			n.c.reads.pending = append(n.c.reads.pending, r)
			n.drainReads()
		case id := <-n.unreach:
			n.c.ReportUnreachable(id)
		case s := <-n.snapc:
			n.c.reportSnapshot(s)
		case fn := <-n.ctrlc:
			fn(n.c.rn)
		case <-n.stopc:
			return
		}
		if err := n.c.Advance(); err != nil {
			n.setFatal(err)
			return
		}
	}
}

func forwardTicks(in <-chan time.Time, out chan<- struct{}, stop <-chan struct{}) {
	for {
		select {
		case <-in:
			select {
			case out <- struct{}{}:
			default: // the loop is busy; a tick is not worth queueing
			}
		case <-stop:
			return
		}
	}
}

func (c *Core) step(m *raftpb.Message) {
	// Errors here are peers we no longer know or stale local messages;
	// raft has already ignored them.
	_ = c.rn.Step(m)
}

func (n *Node) drainReceived() {
	for i := 0; i < 256; i++ {
		select {
		case m := <-n.recvc:
			n.c.Step(m)
		default:
			return
		}
	}
}

func (n *Node) drainReads() {
	for {
		select {
		case r := <-n.readc:
			n.c.reads.pending = append(n.c.reads.pending, r)
		default:
			return
		}
	}
}

// recoverCorruption turns raft's panic on a failed storage read into the
// loop's fatal error when the read failed because a stored record is
// corrupt or the disk failed to read (raft panics on any storage error it
// does not expect), and its panic on a log that lost entries the leader
// knows it acknowledged (ErrLogBehindState, from raftLogger), so the member
// stops saying what was damaged instead of with a stack trace. Any other
// panic is a bug and goes on.
func (n *Node) recoverCorruption() {
	p := recover()
	if p == nil {
		return
	}
	if err, ok := p.(error); ok && (errors.Is(err, record.ErrCorrupt) || errors.Is(err, storage.ErrRead) || errors.Is(err, ErrLogBehindState)) {
		n.setFatal(err)
		return
	}
	panic(p)
}

func (n *Node) setFatal(err error) {
	n.c.log.Error("raft loop stopped on a fatal error", "err", err)
	n.fatal.Store(&err)
}

func (n *Node) shutdown() {
	close(n.done)
	n.c.Close(ErrStopped)
	// Drain callers still queued so none waits for a loop that is gone.
	for {
		select {
		case p := <-n.propc:
			n.c.wait.trigger(p.id, Result{Err: ErrStopped})
		case r := <-n.readc:
			r.ch <- ReadResult{Err: ErrStopped}
		default:
			return
		}
	}
}

// handleReady carries out one Ready in the order raft requires.
func (c *Core) handleReady(rd raft.Ready) error {
	if rd.SoftState != nil {
		c.updateLeader(rd.SoftState)
	}
	if rd.HardState != nil && !raft.IsEmptyHardState(rd.HardState) {
		c.term.Store(rd.HardState.GetTerm())
		c.commit.Store(rd.HardState.GetCommit())
	}
	leader := c.isLeader.Load()
	if leader {
		c.send(rd.Messages)
	}
	// On the leader, entries committed and already durable are applied
	// before this Ready's fsync: a proposal committed by the last round
	// waits for its apply, not for the newer entries' flush too.
	committed := rd.CommittedEntries
	if k := c.durableRun(rd, leader); k > 0 {
		if err := c.applyEntries(committed[:k]); err != nil {
			return err
		}
		committed = committed[k:]
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := c.installSnapshot(rd.Snapshot); err != nil {
			return err
		}
	}
	c.noteConfChanges(rd.Entries)
	mustSync := c.mustSync(rd)
	hs := c.hardStateToSave(rd)
	if err := c.cfg.Log.Save(hs, rd.Entries, mustSync); err != nil {
		return fmt.Errorf("raftnode: persist ready: %w", err)
	}
	if hs != nil {
		c.savedHardState = hs
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		c.prevHardState = rd.HardState
	}
	if len(rd.Entries) > 0 {
		last := rd.Entries[len(rd.Entries)-1].GetIndex()
		c.lastIdx.Store(last)
		c.durable = last // Save synced them (mustSync: entries always sync)
	}
	if !leader {
		c.send(rd.Messages)
	}
	if len(rd.ReadStates) > 0 {
		states := make([]readState, len(rd.ReadStates))
		for i, rs := range rd.ReadStates {
			states[i] = readState{index: rs.Index, ctx: rs.RequestCtx}
		}
		c.serveReads(states)
	}
	if err := c.applyEntries(committed); err != nil {
		return err
	}
	c.rn.Advance(rd)
	return c.maybeSnapshot()
}

// durableRun returns how many of rd's committed entries, from the first,
// the leader applies before rd is saved: normal entries whose log entry an
// earlier Save already made durable (at or below c.durable) and which rd
// does not rewrite (below its first new entry). So every entry is still
// durable in the local log before it is applied (commitApplied relies on
// it). A Ready with a snapshot applies nothing early (the install comes
// first), nor does a conf change or anything after one (it is applied in
// its usual place, after the Save). A follower applies nothing early: its
// Save is followed by its acknowledgement to the leader, which an apply
// before it would delay, and every write's commit with it (one client's
// puts: 0.82x with followers applying early too).
func (c *Core) durableRun(rd raft.Ready, leader bool) int {
	if !leader || !raft.IsEmptySnap(rd.Snapshot) {
		return 0
	}
	bound := c.durable
	if len(rd.Entries) > 0 {
		bound = min(bound, rd.Entries[0].GetIndex()-1)
	}
	k := 0
	for _, e := range rd.CommittedEntries {
		if e.GetIndex() > bound || e.GetType() != raftpb.EntryType_EntryNormal {
			break
		}
		k++
	}
	return k
}

// mustSync reports whether rd must be made durable before its messages go
// out: it carries entries, or a new term or vote. A Ready without a
// HardState leaves the HardState as it was; raft.MustSync, given nil,
// would compare an empty term and vote against the previous ones and sync
// every Ready, putting an fsync into every heartbeat and ReadIndex round.
func (c *Core) mustSync(rd raft.Ready) bool {
	hs := rd.HardState
	if raft.IsEmptyHardState(hs) {
		hs = c.prevHardState
	}
	return raft.MustSync(hs, c.prevHardState, len(rd.Entries))
}

// hardStateToSave returns the HardState rd's Save writes, or nil for none:
// the latest one raft gave (rd's, or the previous), when it differs from
// the stored one in term or vote (raft requires those durable before any
// message goes out), or when rd writes entries anyway. A change of the
// commit index alone is not written by itself: it waits for the next write
// of entries, saving a Pebble commit per Ready on every member (3 → 2 per
// put at one client). The commit index needs no durability: after a
// restart raft relearns it from the leader, entries at or below the applied
// index are skipped on replay, and storage raises the stored commit to any
// snapshot or truncation point it writes, which raft requires
// (storage.LogStore.CreateSnapshot, Compact).
func (c *Core) hardStateToSave(rd raft.Ready) *raftpb.HardState {
	hs := rd.HardState
	if raft.IsEmptyHardState(hs) {
		hs = c.prevHardState
	}
	if raft.IsEmptyHardState(hs) {
		return nil
	}
	saved := c.savedHardState
	termOrVote := hs.GetTerm() != saved.GetTerm() || hs.GetVote() != saved.GetVote()
	if termOrVote || (len(rd.Entries) > 0 && hs.GetCommit() != saved.GetCommit()) {
		return hs
	}
	return nil
}

func (c *Core) updateLeader(ss *raft.SoftState) {
	c.isLeader.Store(ss.RaftState == raft.StateLeader)
	if old := c.lead.Swap(ss.Lead); old != ss.Lead {
		next := make(chan struct{})
		prev := c.leaderCh.Swap(&next)
		close(*prev)
		c.stats.leaderChanges.Add(1)
		c.log.Info("leader changed", "from", fmt.Sprintf("%x", old), "to", fmt.Sprintf("%x", ss.Lead))
	}
}

// send hands messages to the transport; snapshots take their own path.
func (c *Core) send(msgs []*raftpb.Message) {
	if len(msgs) == 0 {
		return
	}
	out := msgs[:0:0]
	for _, m := range msgs {
		if m.GetType() == raftpb.MessageType_MsgSnap {
			c.sendSnapshot(m)
			continue
		}
		out = append(out, m)
	}
	if len(out) > 0 {
		c.tr.Send(out)
	}
}
