package simulation

import (
	"encoding/binary"
	"fmt"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/lease"
)

// member is one simulated synod member: a raft.RawNode over the real
// storage.LogStore, applying to the real mvcc.Store, driven by the
// scheduler instead of raftnode's goroutine loop. handleReady keeps
// raftnode's order (raftnode/loop.go): a leader sends before persisting,
// then entries and HardState are saved (synced when raft says so), a
// follower sends, read states are served, committed entries applied, Advance.
type member struct {
	id      uint64
	founder bool // bootstraps with the founding peers when its log is empty
	peers   []raft.Peer
	disk    *disk
	snapDir string // received snapshot files (real filesystem)
	lessor  *lease.Lessor
	rn      *raft.RawNode
	up      bool
	removed bool
	// paused models a stopped process (SIGSTOP, a long GC or VM pause): it
	// keeps its state but neither ticks nor handles messages; what arrives
	// meanwhile waits in held, in order, and is handled on resume.
	paused    bool
	held      []*raftpb.Message
	tickEvery Time // this member's tick period: its clock's rate (skew)

	prevHS    *raftpb.HardState
	confState *raftpb.ConfState
	applied   uint64
	snapIndex uint64
	lead      uint64
	leader    bool

	writes []*call // proposals waiting to be applied here, in order
	reads  []*call // reads waiting for a read state or for the apply to reach it

	c *cluster
}

// start opens the member's disk and raft. Crashed members restart the same way.
func (m *member) start() error {
	m.newLessor()
	if err := m.disk.open(func(id int64) bool { return m.lessor.Exists(id) }); err != nil {
		return err
	}
	hs, cs, err := m.disk.log.InitialState()
	if err != nil {
		return err
	}
	if err := m.recoverSnapshot(); err != nil {
		return fmt.Errorf("simulation: member %x: %w", m.id, err)
	}
	if err := m.loadLeases(); err != nil {
		return fmt.Errorf("simulation: member %x: load leases: %w", m.id, err)
	}
	snap, err := m.disk.log.Snapshot()
	if err != nil {
		return err
	}
	m.snapIndex = snap.GetMetadata().GetIndex()
	m.prevHS, m.confState = hs, cs
	m.applied, _ = m.disk.store.Applied()
	rn, err := raft.NewRawNode(&raft.Config{
		ID:                        m.id,
		ElectionTick:              10,
		HeartbeatTick:             1,
		Storage:                   m.disk.log,
		Applied:                   m.snapIndex,
		MaxSizePerMsg:             1 << 20,
		MaxCommittedSizePerReady:  8 << 20,
		MaxUncommittedEntriesSize: 1 << 30,
		MaxInflightMsgs:           512,
		CheckQuorum:               true,
		PreVote:                   true,
		ReadOnlyOption:            raft.ReadOnlySafe,
		Logger:                    discardLogger{},
		StepDownOnRemoval:         true,
	})
	if err != nil {
		return fmt.Errorf("simulation: member %x: start raft: %w", m.id, err)
	}
	m.rn, m.up, m.lead, m.leader = rn, true, 0, false
	if last, _ := m.disk.log.LastIndex(); last == 0 && m.founder {
		if err := rn.Bootstrap(m.peers); err != nil {
			return fmt.Errorf("simulation: member %x: bootstrap: %w", m.id, err)
		}
	}
	m.c.tracef("start %x applied=%d", m.id, m.applied)
	return m.process()
}

// crash stops the member at once, losing its unsynced writes; requests
// waiting on it get an unknown outcome.
func (m *member) crash() {
	m.up, m.rn, m.lead, m.leader = false, nil, 0, false
	m.paused, m.held = false, nil
	m.disk.crash()
	for _, w := range m.writes {
		w.finish(outcomeUnknown, nil)
	}
	for _, r := range m.reads {
		r.finish(outcomeFailed, nil)
	}
	m.writes, m.reads = nil, nil
	m.c.tracef("crash %x", m.id)
}

// tick advances raft's clock by one tick.
func (m *member) tick() error {
	m.rn.Tick()
	return m.process()
}

// step hands a received message to raft.
func (m *member) step(msg *raftpb.Message) error {
	if len(msg.GetSnapshot().GetData()) > 0 {
		if err := m.receiveSnapshot(msg); err != nil {
			return fmt.Errorf("simulation: member %x: %w", m.id, err)
		}
	}
	_ = m.rn.Step(msg) // errors are stale or foreign messages raft ignored
	return m.process()
}

// propose replicates a client write; the call finishes when this member
// applies it, or fails at once when raft refuses it.
func (m *member) propose(c *call) error {
	data, err := proto.Marshal(c.req)
	if err != nil {
		return err
	}
	if err := m.rn.Propose(data); err != nil {
		c.finish(outcomeFailed, nil) // dropped: never in any log
		return nil
	}
	m.writes = append(m.writes, c)
	return m.process()
}

// readIndex starts a linearizable read (raft ReadIndex, as raftnode/read.go);
// with no known leader it fails at once (raftnode's ErrNoLeader).
func (m *member) readIndex(c *call) error {
	if m.lead == 0 {
		c.finish(outcomeFailed, nil)
		return nil
	}
	m.reads = append(m.reads, c)
	m.rn.ReadIndex(binary.BigEndian.AppendUint64(nil, c.id))
	return m.process()
}

// pending reports whether a client still waits on this member.
func (m *member) pending() bool {
	for _, w := range append(m.writes[:len(m.writes):len(m.writes)], m.reads...) {
		if !w.done {
			return true
		}
	}
	return false
}

// process handles every Ready raft has.
func (m *member) process() error {
	for m.up && m.rn.HasReady() {
		if err := m.handleReady(m.rn.Ready()); err != nil {
			return fmt.Errorf("simulation: member %x: %w", m.id, err)
		}
	}
	return nil
}

func (m *member) handleReady(rd raft.Ready) error {
	if rd.SoftState != nil {
		m.leader = rd.SoftState.RaftState == raft.StateLeader
		if rd.SoftState.Lead != m.lead {
			m.lead = rd.SoftState.Lead
			m.c.tracef("lead %x sees %x", m.id, m.lead)
		}
	}
	leader := m.leader
	if leader {
		if err := m.send(rd.Messages); err != nil {
			return err
		}
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := m.installSnapshot(rd.Snapshot); err != nil {
			return err
		}
	}
	mustSync := raft.MustSync(rd.HardState, m.prevHS, len(rd.Entries))
	if err := m.disk.log.Save(rd.HardState, rd.Entries, mustSync); err != nil {
		return fmt.Errorf("persist ready: %w", err)
	}
	if rd.HardState != nil && !raft.IsEmptyHardState(rd.HardState) {
		m.prevHS = rd.HardState
	}
	if !leader {
		if err := m.send(rd.Messages); err != nil {
			return err
		}
	}
	for _, rs := range rd.ReadStates {
		m.gotReadState(rs)
	}
	if err := m.applyEntries(rd.CommittedEntries); err != nil {
		return err
	}
	m.rn.Advance(rd)
	if err := m.maybeSnapshot(); err != nil {
		return err
	}
	m.c.tracef("ready %x hs=%d/%d/%d ents=%d msgs=%d applied=%d", m.id,
		rd.HardState.GetTerm(), rd.HardState.GetVote(), rd.HardState.GetCommit(),
		len(rd.Entries), len(rd.Messages), m.applied)
	return nil
}

func (m *member) send(msgs []*raftpb.Message) error {
	for _, msg := range msgs {
		if msg.GetType() == raftpb.MessageType_MsgSnap {
			if err := m.sendSnapshot(msg); err != nil {
				return err
			}
			continue
		}
		m.c.net.send(msg)
	}
	return nil
}

// gotReadState records the index a read must wait for.
func (m *member) gotReadState(rs raft.ReadState) {
	if len(rs.RequestCtx) != 8 {
		return
	}
	id := binary.BigEndian.Uint64(rs.RequestCtx)
	for _, r := range m.reads {
		if r.id == id && r.readAt == 0 {
			r.readAt = rs.Index
		}
	}
}

// serveReads answers the reads whose read index has been applied.
func (m *member) serveReads() {
	kept := m.reads[:0]
	for _, r := range m.reads {
		if r.readAt == 0 || r.readAt > m.applied {
			kept = append(kept, r)
			continue
		}
		resp, err := m.disk.store.Range(bg, r.req.GetRange())
		if err != nil {
			r.finish(outcomeFailed, nil)
			continue
		}
		r.finish(outcomeOK, resp)
	}
	m.reads = kept
}

// discardLogger silences raft.
type discardLogger struct{}

func (discardLogger) Debug(...any)            {}
func (discardLogger) Debugf(string, ...any)   {}
func (discardLogger) Error(...any)            {}
func (discardLogger) Errorf(string, ...any)   {}
func (discardLogger) Info(...any)             {}
func (discardLogger) Infof(string, ...any)    {}
func (discardLogger) Warning(...any)          {}
func (discardLogger) Warningf(string, ...any) {}
func (discardLogger) Fatal(v ...any)          { panic(fmt.Sprint(v...)) }
func (discardLogger) Fatalf(f string, v ...any) {
	panic(fmt.Sprintf(f, v...))
}
func (discardLogger) Panic(v ...any)            { panic(fmt.Sprint(v...)) }
func (discardLogger) Panicf(f string, v ...any) { panic(fmt.Sprintf(f, v...)) }
