package simulation

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/raftnode"
	"github.com/synod-db/synod/statemachine"
)

var bg = context.Background()

// member is one simulated synod member: the production raft step function
// (raftnode.Core) over the production log store (storage.LogStore) and state
// machine (statemachine.Machine, with the real mvcc store, lessor, alarms
// and membership), all on a Pebble database on a crashable in-memory
// filesystem. The scheduler calls the Core's step methods where raftnode's
// goroutine shell would; nothing of the Ready handling, the apply path or
// the snapshot path is re-implemented here.
type member struct {
	id      uint64
	founder bool // bootstraps with the founding peers when its log is empty
	peers   []raft.Peer
	disk    *disk
	snapDir string // received snapshot files (real filesystem)
	core    *raftnode.Core
	sm      *statemachine.Machine
	obs     *observer // this incarnation's watchers and membership hook
	up      bool
	removed bool
	// paused models a stopped process (SIGSTOP, a long GC or VM pause): it
	// keeps its state but neither ticks nor handles messages; what arrives
	// meanwhile waits in held, in order, and is handled on resume.
	paused    bool
	held      []*heldMsg
	tickEvery Time   // this member's tick period: its clock's rate (skew)
	lead      uint64 // the leader as last traced

	writes []*call // proposals waiting to be applied here, in order
	reads  []*call // reads waiting for a read index or for the apply to reach it

	c *cluster
}

// start opens the member's disk, its state machine and its raft Core, as
// server.New and raftnode.New do. Crashed members restart the same way.
func (m *member) start() error {
	if err := m.disk.open(); err != nil {
		return err
	}
	m.obs = &observer{m: m}
	sm, err := statemachine.Open(statemachine.Config{DB: m.disk.db, Clock: m.c.now, Logger: slog.New(slog.DiscardHandler),
		Watchers: m.obs, OnConfChange: m.obs.onConfChange, FS: m.disk.fs, IngestDir: "db.ingest"})
	if err != nil {
		return fmt.Errorf("simulation: member %x: open state machine: %w", m.id, err)
	}
	m.sm, m.obs.sm, m.disk.sm = sm, sm, sm
	core, err := raftnode.NewCore(raftnode.Config{
		ID: m.id, Peers: m.peers, Join: !m.founder,
		ElectionTicks: 10, HeartbeatTicks: 1,
		SnapshotCount: m.c.snapshotCount, SnapshotCatchUpEntries: m.c.catchUpEntries,
		Log: m.disk.log, Applier: sm, SnapDir: m.snapDir, Now: m.c.now,
	})
	if err != nil {
		return fmt.Errorf("simulation: member %x: %w", m.id, err)
	}
	core.SetSender(sender{m: m, core: core})
	m.core, m.up, m.lead = core, true, 0
	applied, _ := sm.KV().Applied()
	m.c.tracef("start %x applied=%d", m.id, applied)
	return m.process()
}

// crash stops the member at once, losing its unsynced writes; requests
// waiting on it get an unknown outcome.
func (m *member) crash() {
	m.up, m.core, m.sm, m.lead = false, nil, nil, 0
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
	m.core.Tick()
	return m.process()
}

// step hands a received message to raft; a snapshot's stream is stored and
// verified first, as the transport has raftnode do.
func (m *member) step(h *heldMsg) error {
	if h.body != nil {
		if err := m.core.StoreSnapshot(h.msg, h.body); err != nil {
			return fmt.Errorf("simulation: member %x: %w", m.id, err)
		}
	}
	m.core.Step(h.msg)
	return m.process()
}

// propose replicates a client write; the call finishes when this member
// applies it, or fails at once when raft refuses it.
func (m *member) propose(c *call) error {
	ch, err := m.core.ProposeAsync(c.req)
	if err != nil {
		return err
	}
	c.res = ch
	m.writes = append(m.writes, c)
	return m.process()
}

// readIndex starts a linearizable read (raftnode's ReadIndex); with no
// known leader it fails at once (ErrNoLeader).
func (m *member) readIndex(c *call) error {
	if m.core.Leader() == 0 {
		c.finish(outcomeFailed, nil)
		return nil
	}
	c.read = m.core.ReadIndexAsync()
	m.reads = append(m.reads, c)
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

// process lets the Core handle everything raft has ready, then answers
// the calls whose results arrived.
func (m *member) process() error {
	if !m.up {
		return nil
	}
	before := m.core.AppliedIndex()
	if err := m.core.Advance(); err != nil {
		return fmt.Errorf("simulation: member %x: %w", m.id, err)
	}
	// The state's background compactor runs what an applied compaction
	// kicked; waiting for it here puts its writes and its memtable flush
	// (Reclaim) at the same step of every replay, so what a later crash
	// keeps does not depend on when its goroutine ran.
	m.sm.KV().WaitCompactorIdle()
	if after := m.core.AppliedIndex(); after != before {
		m.c.tracef("apply %x %d-%d", m.id, before+1, after)
	}
	if l := m.core.Leader(); l != m.lead {
		m.lead = l
		m.c.tracef("lead %x sees %x", m.id, l)
	}
	m.answerWrites()
	m.serveReads()
	return m.obs.err
}

// answerWrites finishes the writes whose results arrived.
func (m *member) answerWrites() {
	kept := m.writes[:0]
	for _, w := range m.writes {
		select {
		case r := <-w.res:
			if r.Err != nil {
				w.finish(outcomeFailed, nil)
			} else {
				w.finish(outcomeOK, r.Resp)
			}
		default:
			if !w.done {
				kept = append(kept, w)
			}
		}
	}
	m.writes = kept
}

// serveReads answers the reads whose read index arrived and is applied.
func (m *member) serveReads() {
	applied := m.core.AppliedIndex()
	kept := m.reads[:0]
	for _, r := range m.reads {
		if r.readAt == 0 {
			select {
			case rr := <-r.read:
				if rr.Err != nil {
					r.finish(outcomeFailed, nil)
					continue
				}
				r.readAt = rr.Index
			default:
			}
		}
		if r.done {
			continue
		}
		if r.readAt == 0 || r.readAt > applied {
			kept = append(kept, r)
			continue
		}
		resp, err := m.sm.KV().Range(bg, r.req.GetRange())
		if err != nil {
			r.finish(outcomeFailed, nil)
			continue
		}
		r.finish(outcomeOK, resp)
	}
	m.reads = kept
}

// status is raft's view on this member.
func (m *member) status() raft.Status { return m.core.RaftStatus() }

// voters and learners are the member's current raft configuration.
func (m *member) voters() []uint64 { return slices.Sorted(maps.Keys(m.status().Config.Voters.IDs())) }
func (m *member) learners() []uint64 {
	return slices.Sorted(maps.Keys(m.status().Config.Learners))
}

// peerContext is a founding or added member as a conf change carries it.
func peerContext(id uint64) []byte {
	b, _ := proto.Marshal(&pb.Member{ID: id, Name: fmt.Sprintf("m%d", id), PeerURLs: []string{fmt.Sprintf("http://m%d:2380", id)}})
	return b
}
