package simulation

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/anishathalye/porcupine"
	"go.etcd.io/raft/v3"

	"github.com/synod-db/synod/kvmodel"
)

// tickInterval is the simulated length of one raft tick (ms): elections
// time out after 10 to 20 ticks.
const tickInterval = 10

// traceTail is how many trace lines a failure report shows.
const traceTail = 60

// cluster is one simulated run: the scheduler, the network, the members,
// the clients and what they observed.
type cluster struct {
	sched scheduler
	rng   *rand.Rand
	net   *network

	members []*member // every member ever created, in creation (= ID) order
	nextMem uint64
	clients []*client

	ids         uint64 // request IDs, unique across the run
	clock       int64  // logical timestamps for the history
	workloadEnd Time
	history     []porcupine.Operation
	acked       []ackedWrite
	leases      []int64       // granted (acknowledged) lease IDs
	revoked     []int64       // leases whose revocation was acknowledged
	puts        []putCall     // acknowledged multi-key txns (extras.go)
	alarms      []alarmWindow // when a NOSPACE alarm was certainly raised
	alarmed     bool          // a NOSPACE alarm is raised or being disarmed
	hashes      hashLog

	snapshotCount  uint64 // applied entries between raft snapshots
	catchUpEntries uint64 // entries kept behind a snapshot
	snapRoot       string // real directory holding every member's snapshot files

	digest hash.Hash
	tail   []string
	out    io.Writer // the full trace, if set
	err    error     // first fatal error; ends the run
}

// ackedWrite is a write a client saw succeed, at its revision.
type ackedWrite struct {
	key, value string
	rev        int64
	deleted    bool
}

func newCluster(seed uint64, out io.Writer) *cluster {
	c := &cluster{rng: rand.New(rand.NewPCG(seed, 0x5eed5eed)), digest: sha256.New(), out: out}
	c.hashes.c = c
	c.net = &network{rng: c.rng, sched: &c.sched, cut: map[link]bool{}, deliver: c.deliver, trace: c.tracef}
	return c
}

// tracef appends one line to the trace: it feeds the digest that proves
// replay, the tail shown on failure, and the full trace writer if any.
func (c *cluster) tracef(format string, args ...any) {
	line := fmt.Sprintf("%6d ", c.sched.now) + fmt.Sprintf(format, args...) + "\n"
	io.WriteString(c.digest, line)
	if len(c.tail) == traceTail {
		copy(c.tail, c.tail[1:])
		c.tail = c.tail[:traceTail-1]
	}
	c.tail = append(c.tail, line)
	if c.out != nil {
		io.WriteString(c.out, line)
	}
}

// fail records the first fatal error.
func (c *cluster) fail(err error) {
	if err != nil && c.err == nil {
		c.err = err
		c.tracef("fatal: %v", err)
	}
}

func (c *cluster) nextID() uint64 { c.ids++; return c.ids }

// stamp is the next logical timestamp of the history.
func (c *cluster) stamp() int64 { c.clock++; return c.clock }

// record appends an operation to the history; ret < 0 is an unknown return.
func (c *cluster) record(client int, in kvmodel.RegInput, out kvmodel.RegOutput, call, ret int64) {
	c.history = append(c.history, porcupine.Operation{ClientId: client, Input: in, Output: out, Call: call, Return: ret})
}

// addMember creates a member with a fresh disk and starts it and its ticker.
func (c *cluster) addMember(founder bool, peers []raft.Peer) (*member, error) {
	d, err := newDisk()
	if err != nil {
		return nil, err
	}
	c.nextMem++
	m := &member{id: c.nextMem, founder: founder, peers: peers, disk: d, c: c,
		snapDir: filepath.Join(c.snapRoot, fmt.Sprintf("m%d", c.nextMem))}
	if err := os.MkdirAll(m.snapDir, 0o700); err != nil {
		return nil, err
	}
	c.members = append(c.members, m)
	if err := m.start(); err != nil {
		return nil, err
	}
	// Clocks run at different rates: each member ticks every 9 to 11 ms.
	m.tickEvery = Time(tickInterval - 1 + c.rng.IntN(3))
	c.sched.after(Time(1+c.rng.IntN(tickInterval)), func() { c.tick(m) })
	return m, nil
}

// tick ticks m (if it is up and running) and schedules its next tick. A
// paused member loses its ticks, as a stopped process's ticker does.
func (c *cluster) tick(m *member) {
	if m.removed {
		return
	}
	if m.up && !m.paused {
		c.fail(m.tick())
	}
	c.sched.after(m.tickEvery, func() { c.tick(m) })
}

// member returns the member with id, or nil.
func (c *cluster) member(id uint64) *member {
	if id == 0 || id > uint64(len(c.members)) {
		return nil
	}
	return c.members[id-1]
}

// deliver hands a message to its recipient if it is up and still a member.
func (c *cluster) deliver(h *heldMsg) bool {
	msg := h.msg
	m := c.member(msg.GetTo())
	if m == nil || !m.up || m.removed {
		return false
	}
	if from := c.member(msg.GetFrom()); from != nil && from.removed {
		return false // the transport refuses removed members
	}
	if m.paused {
		m.held = append(m.held, h) // in the socket, read on resume
		return true
	}
	err := m.step(h)
	c.fail(err)
	return err == nil
}

// live is every member that is up and not removed, in ID order.
func (c *cluster) live() []*member {
	var out []*member
	for _, m := range c.members {
		if m.up && !m.removed {
			out = append(out, m)
		}
	}
	return out
}

// current is every member not removed (up or crashed), as IDs.
func (c *cluster) current() []uint64 {
	var out []uint64
	for _, m := range c.members {
		if !m.removed {
			out = append(out, m.id)
		}
	}
	return out
}

// randomLiveMember picks a live member that is not paused, or nil when
// none is.
func (c *cluster) randomLiveMember() *member {
	var l []*member
	for _, m := range c.live() {
		if !m.paused {
			l = append(l, m)
		}
	}
	if len(l) == 0 {
		return nil
	}
	return l[c.rng.IntN(len(l))]
}

// leader is a running member that believes it leads with the highest
// term, or nil (a paused one cannot act).
func (c *cluster) leader() *member {
	var best *member
	for _, m := range c.live() {
		if m.core.IsLeader() && !m.paused && (best == nil || m.status().GetTerm() > best.status().GetTerm()) {
			best = m
		}
	}
	return best
}

// removeMember reacts to a member's removal the first time any member
// applies it: the removed member is stopped for good, as synod's transport
// and server do.
func (c *cluster) removeMember(id uint64) {
	m := c.member(id)
	if m == nil || m.removed {
		return
	}
	m.removed = true
	c.tracef("removed %x stops", m.id)
	// Stopped from the scheduler, not here: the member applying the change
	// may be the removed one, in the middle of its own Ready.
	c.sched.after(0, func() {
		if m.up {
			m.crash()
		}
	})
}
