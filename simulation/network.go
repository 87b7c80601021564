package simulation

import (
	"bytes"
	"math/rand/v2"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// netConfig is how badly a run's network behaves. Each run draws its own.
type netConfig struct {
	// MinDelay and MaxDelay bound the delay of a message, drawn uniformly.
	MinDelay, MaxDelay Time
	// Loss is the probability that a message is dropped.
	Loss float64
	// Dup is the probability that a message is delivered twice. Proposals
	// forwarded to the leader (MsgProp) are never duplicated: synod's
	// transport delivers each message at most once on a stream, and a
	// duplicated proposal would be a second, distinct client request.
	Dup float64
	// Reorder is the probability that a message is held back by up to
	// 5*MaxDelay more, overtaking nothing but overtaken by later messages.
	Reorder float64
}

// link is one direction between two members.
type link struct{ from, to uint64 }

// network is the simulated peer network: every message is cloned (as the
// wire would) and delivered through the scheduler after a random delay,
// unless the link is cut or the message is lost.
type network struct {
	cfg     netConfig
	rng     *rand.Rand
	sched   *scheduler
	cut     map[link]bool         // looked up only, never iterated
	deliver func(h *heldMsg) bool // reports whether the recipient took it
	trace   func(format string, args ...any)
}

// send puts m on the wire from m.From to m.To.
func (n *network) send(m *raftpb.Message) {
	l := link{m.GetFrom(), m.GetTo()}
	if n.cut[l] {
		return
	}
	if n.rng.Float64() < n.cfg.Loss {
		n.trace("drop %x→%x %s", l.from, l.to, m.GetType())
		return
	}
	n.schedule(m)
	if m.GetType() != raftpb.MessageType_MsgProp && n.rng.Float64() < n.cfg.Dup {
		n.trace("dup %x→%x %s", l.from, l.to, m.GetType())
		n.schedule(m)
	}
}

// schedule delivers a copy of m after a random delay.
func (n *network) schedule(m *raftpb.Message) {
	d := n.cfg.MinDelay + Time(n.rng.Int64N(int64(n.cfg.MaxDelay-n.cfg.MinDelay)+1))
	if n.rng.Float64() < n.cfg.Reorder {
		d += Time(n.rng.Int64N(int64(5*n.cfg.MaxDelay) + 1))
	}
	c := proto.Clone(m).(*raftpb.Message)
	n.sched.after(d, func() {
		if n.cut[link{c.GetFrom(), c.GetTo()}] {
			return // cut while in flight
		}
		n.deliver(&heldMsg{msg: c})
	})
}

// sendReport sends a snapshot message with its stream (never duplicated)
// and calls report with whether it reached its recipient, as synod's
// snapshot stream tells the sender.
func (n *network) sendReport(m *raftpb.Message, body []byte, report func(delivered bool)) {
	l := link{m.GetFrom(), m.GetTo()}
	lost := n.cut[l] || n.rng.Float64() < n.cfg.Loss
	d := n.cfg.MinDelay + Time(n.rng.Int64N(int64(n.cfg.MaxDelay-n.cfg.MinDelay)+1))
	c := proto.Clone(m).(*raftpb.Message)
	n.sched.after(d, func() {
		if lost || n.cut[l] {
			n.trace("snapshot %x→%x lost", l.from, l.to)
			report(false)
			return
		}
		report(n.deliver(&heldMsg{msg: c, body: bytes.NewReader(body)}))
	})
}

// apply replaces the set of cut links with p's.
func (n *network) apply(p partition) {
	n.cut = make(map[link]bool, len(p.cut))
	for _, l := range p.cut {
		n.cut[l] = true
	}
}

// heal reconnects every link.
func (n *network) heal() { n.cut = map[link]bool{} }
