package raftnode

import (
	"sync/atomic"
	"time"
)

// idGenerator issues proposal IDs unique across members and restarts: the
// low 16 bits of the member ID, then 40 bits of milliseconds at start, then a
// counter (as etcd's idutil does). Safe for concurrent use.
type idGenerator struct {
	prefix uint64
	suffix atomic.Uint64
}

const (
	idTSBits  = 40
	idCntBits = 8
	idSufBits = idTSBits + idCntBits
)

func newIDGenerator(member uint64, now time.Time) *idGenerator {
	g := &idGenerator{prefix: member << idSufBits}
	ms := uint64(now.UnixMilli()) & (1<<idTSBits - 1)
	g.suffix.Store(ms << idCntBits)
	return g
}

func (g *idGenerator) next() uint64 {
	s := g.suffix.Add(1) & (1<<idSufBits - 1)
	return g.prefix | s
}

// NewID returns a fresh ID from the member's proposal ID generator: unique
// across members and restarts (etcd's reqIDGen.Next). The API edge derives
// generated lease IDs from it before proposing, so apply stays deterministic.
func (n *Node) NewID() uint64 { return n.c.idg.next() }
