package simulation

import (
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Fault schedule bounds (ms) and limits.
const (
	minFaultGap, maxFaultGap = 50, 400
	maxPartition             = 600
	maxDowntime              = 600
	maxPause                 = 600
	maxMembersCreated        = 8 // founders plus joiners, per run
	minVoters, maxVoters     = 3, 5
)

// nemesis injects one random fault and schedules the next, until the
// workload ends: partitions of every kind, crashes (sometimes of two members
// at once, so a majority may lose its unsynced writes), pauses (of one or
// two members), membership changes, leader transfers, compactions and a
// NOSPACE alarm raised and disarmed (extras.go).
func (c *cluster) nemesis() {
	if c.sched.now >= c.workloadEnd {
		return
	}
	switch r := c.rng.IntN(100); {
	case r < 26:
		c.partition()
	case r < 52:
		c.crashSome()
	case r < 64:
		c.pauseSome()
	case r < 78:
		c.changeMembership()
	case r < 83:
		c.transferLeader()
	case r < 91:
		c.compact()
	default:
		c.raiseNoSpace()
	}
	c.sched.after(Time(minFaultGap+c.rng.IntN(maxFaultGap-minFaultGap+1)), c.nemesis)
}

// partition cuts links for a while, then heals them.
func (c *cluster) partition() {
	ids := c.current()
	if len(ids) < 2 {
		return
	}
	p := partitionKinds[c.rng.IntN(len(partitionKinds))](ids, c.rng)
	c.net.apply(p)
	c.tracef("partition %s", p.name)
	c.sched.after(Time(1+c.rng.IntN(maxPartition)), func() {
		c.net.heal()
		c.tracef("heal")
	})
}

// crashSome crashes one live member, or two, and restarts each later.
func (c *cluster) crashSome() {
	n := 1
	if c.rng.IntN(3) == 0 {
		n = 2
	}
	for i := 0; i < n; i++ {
		m := c.randomLiveMember()
		if m == nil {
			return
		}
		m.crash()
		c.sched.after(Time(1+c.rng.IntN(maxDowntime)), func() { c.restart(m) })
	}
}

// pauseSome stops one running member's process, or two (a majority of
// three: nothing commits until one resumes), each for 1 to maxPause ms (a
// SIGSTOP, a long GC or VM pause): a paused member keeps its state, memory
// included, and resumes where it was, believing what it believed (a paused
// leader still thinks it leads), while the others may have elected a new
// leader.
func (c *cluster) pauseSome() {
	n := 1
	if c.rng.IntN(3) == 0 {
		n = 2
	}
	for i := 0; i < n; i++ {
		m := c.randomLiveMember() // never one already paused
		if m == nil {
			return
		}
		m.paused = true
		c.tracef("pause %x", m.id)
		c.sched.after(Time(1+c.rng.IntN(maxPause)), func() { c.resume(m) })
	}
}

// resume lets a paused member run again: it handles the messages that
// arrived meanwhile, in order, then ticks on as before.
func (c *cluster) resume(m *member) {
	if !m.paused {
		return // crashed (or resumed) meanwhile
	}
	held := m.held
	m.paused, m.held = false, nil
	c.tracef("resume %x with %d held", m.id, len(held))
	for _, h := range held {
		if !m.up || m.removed || m.paused {
			return
		}
		c.fail(m.step(h))
	}
}

// restart starts a crashed member again from what its disk kept.
func (c *cluster) restart(m *member) {
	if m.up || m.removed {
		return
	}
	c.fail(m.start())
}

// changeMembership asks the leader for one change: promote a learner, add
// a new member as a learner, or remove a voter, keeping 3 to 5 voters.
func (c *cluster) changeMembership() {
	l := c.leader()
	if l == nil {
		return
	}
	voters, learners := l.voters(), l.learners()
	var cc *raftpb.ConfChange
	switch {
	case len(learners) > 0:
		cc = &raftpb.ConfChange{Type: raftpb.ConfChangeType_ConfChangeAddNode.Enum(), NodeId: proto.Uint64(learners[0])}
	case len(voters) < maxVoters && len(c.members) < maxMembersCreated && (len(voters) <= minVoters || c.rng.IntN(2) == 0):
		m, err := c.addMember(false, nil)
		if err != nil {
			c.fail(err)
			return
		}
		cc = &raftpb.ConfChange{Type: raftpb.ConfChangeType_ConfChangeAddLearnerNode.Enum(), NodeId: proto.Uint64(m.id), Context: peerContext(m.id)}
	case len(voters) > minVoters:
		cc = &raftpb.ConfChange{Type: raftpb.ConfChangeType_ConfChangeRemoveNode.Enum(), NodeId: proto.Uint64(voters[c.rng.IntN(len(voters))])}
	default:
		return
	}
	c.tracef("propose conf %s %x on %x", cc.GetType(), cc.GetNodeId(), l.id)
	l.core.ProposeConfChangeAsync(cc) // a dropped or rejected change is answered there, and ignored
	c.fail(l.process())
}

// transferLeader asks the leader to hand leadership to a random other voter.
func (c *cluster) transferLeader() {
	l := c.leader()
	if l == nil {
		return
	}
	voters := others(l.voters(), l.id)
	if len(voters) == 0 {
		return
	}
	to := voters[c.rng.IntN(len(voters))]
	c.tracef("transfer leadership %x→%x", l.id, to)
	l.core.TransferLeader(to)
	c.fail(l.process())
}
