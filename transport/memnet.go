package transport

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// MemNetwork is an in-memory network of members for tests. Each member
// joins with Join and gets a Transport that behaves like GRPC: Send never
// blocks and never calls a Handler; every directed link (from, to) has a
// bounded FIFO queue (DefaultQueueSize) drained by its own goroutine, which
// exists only while the queue is non-empty. A message that finds the queue
// full or the link down is dropped and the sender's Handler gets
// ReportUnreachable(to), asynchronously.
//
// Faults: Leave (a crashed member), Partition/Heal, Cut/Restore (one
// direction of one link) and SetDropRate (random loss, silent like lost
// packets, drawn from a seeded generator). A link is down if either end has
// left, the ends are in different partition groups, or it is cut. A message
// is checked when sent and again when delivered, so a fault also drops what
// is queued on the link when it happens.
//
// Messages are cloned at Send, so sender and receiver never share memory,
// as over the wire. Per-link order is deterministic; so is the drop pattern
// of SetDropRate for a given seed and send order. All methods are safe for
// concurrent use and may be called from inside Handler methods, except a
// member's Transport.Close, which waits for that member's Handler calls.
type MemNetwork struct {
	mu       sync.Mutex
	nodes    map[uint64]*memNode
	links    map[memLinkKey]*memLink
	groups   map[uint64]int // partition group per member; nil when healed
	cuts     map[memLinkKey]bool
	dropRate float64
	rng      *rand.Rand
}

type memLinkKey struct{ from, to uint64 }

// memNode is one incarnation of a member: a rejoin after Leave makes a new
// one, so messages addressed to the old incarnation are never delivered.
type memNode struct {
	id     uint64
	h      Handler
	report *reporter
	gone   bool           // left or closed; guarded by MemNetwork.mu
	calls  sync.WaitGroup // in-flight Handler calls and snapshot goroutines
}

// memLink is the queue of one directed link; running is guarded by
// MemNetwork.mu and true while a drain goroutine exists.
type memLink struct {
	q       chan memEnvelope
	running bool
}

type memEnvelope struct {
	m        *raftpb.Message
	from, to *memNode
}

// NewMemNetwork returns an empty network with no faults.
func NewMemNetwork() *MemNetwork {
	return &MemNetwork{
		nodes: make(map[uint64]*memNode),
		links: make(map[memLinkKey]*memLink),
		cuts:  make(map[memLinkKey]bool),
	}
}

// Join connects member id with handler h and returns its Transport. Joining
// an id that is present replaces the old incarnation as if it had left.
// AddPeer and RemovePeer on the returned Transport are no-ops: every joined
// member is reachable.
func (n *MemNetwork) Join(id uint64, h Handler) Transport {
	node := &memNode{id: id, h: h, report: newReporter(h)}
	n.mu.Lock()
	defer n.mu.Unlock()
	if old := n.nodes[id]; old != nil {
		old.gone = true
	}
	n.nodes[id] = node
	return &memTransport{net: n, node: node}
}

// Leave simulates a crash of member id: what it sends, and what is sent or
// queued to it, is dropped. It does not wait for a Handler call already in
// progress. The member may Join again.
func (n *MemNetwork) Leave(id uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if node := n.nodes[id]; node != nil {
		node.gone = true
		delete(n.nodes, id)
	}
}

// Partition splits the network: only members in the same group can talk.
// Members not named in any group are isolated. It replaces any earlier
// partition.
func (n *MemNetwork) Partition(groups ...[]uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.groups = make(map[uint64]int)
	for g, ids := range groups {
		for _, id := range ids {
			n.groups[id] = g
		}
	}
}

// Heal undoes Partition (not Cut).
func (n *MemNetwork) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.groups = nil
}

// Cut takes down the direction from -> to of one link.
func (n *MemNetwork) Cut(from, to uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cuts[memLinkKey{from, to}] = true
}

// Restore undoes Cut(from, to).
func (n *MemNetwork) Restore(from, to uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.cuts, memLinkKey{from, to})
}

// SetDropRate makes every message sent on an up link get lost silently with
// probability p, drawn from a generator seeded with seed. p <= 0 turns loss
// off. Snapshots are not subject to loss (they model a reliable stream).
func (n *MemNetwork) SetDropRate(p float64, seed int64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.dropRate = p
	n.rng = rand.New(rand.NewPCG(uint64(seed), 0x73796e6f64)) // "synod"
}

// up reports whether from can currently reach to. Caller holds n.mu.
func (n *MemNetwork) up(from, to *memNode) bool {
	if from.gone || to.gone || n.nodes[to.id] != to || n.cuts[memLinkKey{from.id, to.id}] {
		return false
	}
	if n.groups != nil {
		gf, okf := n.groups[from.id]
		gt, okt := n.groups[to.id]
		if !okf || !okt || gf != gt {
			return false
		}
	}
	return true
}

// lost draws whether a message is randomly lost. Caller holds n.mu.
func (n *MemNetwork) lost() bool {
	return n.dropRate > 0 && n.rng.Float64() < n.dropRate
}

// send queues clones of msgs from node. Called by memTransport.Send.
func (n *MemNetwork) send(from *memNode, msgs []*raftpb.Message) {
	clones := make([]*raftpb.Message, len(msgs))
	for i, m := range msgs {
		clones[i] = proto.CloneOf(m)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if from.gone {
		return
	}
	for _, m := range clones {
		n.enqueue(from, m)
	}
}

// enqueue queues one message. Caller holds n.mu.
func (n *MemNetwork) enqueue(from *memNode, m *raftpb.Message) {
	to := n.nodes[m.GetTo()]
	if m.GetType() == raftpb.MessageType_MsgSnap {
		from.report.snapshotFailed(m.GetTo())
		return
	}
	if to == nil || !n.up(from, to) {
		from.report.unreachable(m.GetTo())
		return
	}
	if n.lost() {
		return
	}
	key := memLinkKey{from.id, to.id}
	l := n.links[key]
	if l == nil {
		l = &memLink{q: make(chan memEnvelope, DefaultQueueSize)}
		n.links[key] = l
	}
	select {
	case l.q <- memEnvelope{m: m, from: from, to: to}:
	default:
		from.report.unreachable(to.id)
		return
	}
	if !l.running {
		l.running = true
		go n.drain(l)
	}
}

// drain delivers a link's queue in order until it is empty.
func (n *MemNetwork) drain(l *memLink) {
	for {
		n.mu.Lock()
		var e memEnvelope
		select {
		case e = <-l.q:
		default:
			l.running = false
			n.mu.Unlock()
			return
		}
		ok := n.up(e.from, e.to)
		if ok {
			e.to.calls.Add(1)
		} else if !e.from.gone {
			e.from.report.unreachable(e.to.id)
		}
		n.mu.Unlock()
		if ok {
			e.to.h.Process(e.m)
			e.to.calls.Done()
		}
	}
}

// memTransport is a member's view of a MemNetwork.
type memTransport struct {
	net  *MemNetwork
	node *memNode
}

// Send implements Transport.
func (t *memTransport) Send(msgs []*raftpb.Message) { t.net.send(t.node, msgs) }

// AddPeer implements Transport; a no-op (all joined members are reachable).
func (t *memTransport) AddPeer(uint64, []string) {}

// RemovePeer implements Transport; a no-op.
func (t *memTransport) RemovePeer(uint64) {}

// Close implements Transport: the member leaves the network (if this is
// still its current incarnation) and Close waits for its in-flight Handler
// calls and snapshot sends.
func (t *memTransport) Close() error {
	n, node := t.net, t.node
	n.mu.Lock()
	node.gone = true
	if n.nodes[node.id] == node {
		delete(n.nodes, node.id)
	}
	n.mu.Unlock()
	node.calls.Wait()
	node.report.close()
	return nil
}

// SendSnapshot implements Transport. The body is piped to the receiver's
// ReceiveSnapshot in writes of at most ChunkSize bytes; if the link goes
// down meanwhile the stream breaks.
func (t *memTransport) SendSnapshot(m *raftpb.Message, body io.WriterTo, done func(error)) {
	n, from := t.net, t.node
	m = proto.CloneOf(m)
	n.mu.Lock()
	to := n.nodes[m.GetTo()]
	gone := from.gone
	if !gone {
		from.calls.Add(1)
	}
	n.mu.Unlock()
	if gone {
		if done != nil {
			go done(ErrClosed)
		}
		return
	}
	go func() {
		defer from.calls.Done()
		err := n.snapshot(from, to, m, body)
		n.mu.Lock()
		gone := from.gone
		n.mu.Unlock()
		if gone {
			err = fmt.Errorf("transport: snapshot to %x: %w", m.GetTo(), ErrClosed)
		} else {
			from.h.ReportSnapshot(m.GetTo(), err != nil)
		}
		if done != nil {
			done(err)
		}
	}()
}

// snapshot pipes body to the receiver and returns the outcome.
func (n *MemNetwork) snapshot(from, to *memNode, m *raftpb.Message, body io.WriterTo) error {
	id := m.GetTo()
	n.mu.Lock()
	ok := to != nil && n.up(from, to)
	if ok {
		to.calls.Add(1)
	}
	n.mu.Unlock()
	if !ok {
		return fmt.Errorf("transport: snapshot to %x: %w", id, ErrUnreachable)
	}
	defer to.calls.Done()
	pr, pw := io.Pipe()
	wrote := make(chan error, 1)
	go func() {
		_, err := body.WriteTo(&memChunkWriter{net: n, from: from, to: to, w: pw})
		pw.CloseWithError(err) // nil: the reader sees io.EOF
		wrote <- err
	}()
	rerr := to.h.ReceiveSnapshot(m, pr)
	pr.CloseWithError(errSnapshotAborted) // unblocks a writer the receiver left
	werr := <-wrote
	switch {
	case werr != nil && !errors.Is(werr, errSnapshotAborted):
		// The body or the link failed; the receiver saw a broken stream.
		return fmt.Errorf("transport: snapshot to %x: %w", id, werr)
	case rerr != nil:
		return fmt.Errorf("transport: snapshot to %x: %w: %v", id, ErrSnapshotRejected, rerr)
	}
	return nil
}

var errSnapshotAborted = errors.New("transport: snapshot receiver stopped reading")

// memChunkWriter writes to the pipe in pieces of at most ChunkSize bytes
// and fails once the link is down.
type memChunkWriter struct {
	net      *MemNetwork
	from, to *memNode
	w        *io.PipeWriter
}

func (w *memChunkWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		w.net.mu.Lock()
		up := w.net.up(w.from, w.to)
		w.net.mu.Unlock()
		if !up {
			return n, ErrUnreachable
		}
		k, err := w.w.Write(p[:min(len(p), ChunkSize)])
		n += k
		p = p[k:]
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
