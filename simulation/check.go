package simulation

import (
	"errors"
	"fmt"
	"time"

	"github.com/anishathalye/porcupine"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/synod-db/synod/kvmodel"
	"github.com/synod-db/synod/mvcc"
)

// checkTimeout bounds porcupine's search per run; a history it cannot
// decide in time is reported, never passed.
const checkTimeout = 20 * time.Second

// hashLog remembers, per applied index, the first member state hash seen
// there, and reports any member whose hash differs at the same index.
type hashLog struct {
	c    *cluster
	seen map[uint64]hashAt // looked up only, never iterated
	told map[hashAt]bool   // (index, member) pairs already reported
	bad  []string
}

type hashAt struct {
	member uint64
	hash   uint32
}

// sample hashes every live member's state at its applied index.
func (h *hashLog) sample() {
	if h.seen == nil {
		h.seen, h.told = map[uint64]hashAt{}, map[hashAt]bool{}
	}
	for _, m := range h.c.live() {
		idx, _ := m.sm.KV().Applied()
		sum, _, err := m.sm.KV().Hash()
		if err != nil {
			h.c.fail(fmt.Errorf("simulation: member %x: hash: %w", m.id, err))
			return
		}
		first, ok := h.seen[idx]
		switch {
		case !ok:
			h.seen[idx] = hashAt{m.id, sum}
		case first.hash != sum && len(h.bad) < 10 && !h.told[hashAt{m.id, uint32(idx)}]:
			h.told[hashAt{m.id, uint32(idx)}] = true
			h.bad = append(h.bad, fmt.Sprintf("state hash mismatch at applied index %d: member %x has %08x, member %x had %08x",
				idx, m.id, sum, first.member, first.hash))
		}
	}
}

// linearizable checks the client history against the register model.
func (c *cluster) linearizable() []string {
	h := append([]porcupine.Operation(nil), c.history...)
	last := c.clock
	for i := range h {
		if h[i].Return < 0 { // unknown outcome: returns after everything else
			last++
			h[i].Return = last
		}
	}
	res := porcupine.CheckOperationsTimeout(kvmodel.Register, h, checkTimeout)
	switch res {
	case porcupine.Ok:
		return nil
	case porcupine.Unknown:
		return []string{fmt.Sprintf("linearizability check of %d operations did not finish in %s", len(h), checkTimeout)}
	}
	out := []string{fmt.Sprintf("history of %d operations is not linearizable", len(h))}
	return append(out, describeIllegal(h)...)
}

// describeIllegal lists the operations on the keys porcupine could not
// linearize, so a failure can be read without the visualizer.
func describeIllegal(h []porcupine.Operation) []string {
	var out []string
	for k := 0; k < numKeys; k++ {
		key := fmt.Sprintf("k%d", k)
		var part []porcupine.Operation
		for _, op := range h {
			if op.Input.(kvmodel.RegInput).Key == key {
				part = append(part, op)
			}
		}
		if porcupine.CheckOperationsTimeout(kvmodel.Register, part, checkTimeout) != porcupine.Illegal {
			continue
		}
		out = append(out, fmt.Sprintf("key %s:", key))
		for _, op := range part {
			ret := fmt.Sprint(op.Return)
			if op.Output.(kvmodel.RegOutput).Unknown {
				ret = "?"
			}
			out = append(out, fmt.Sprintf("  [%d,%s] c%d %s", op.Call, ret, op.ClientId,
				kvmodel.Register.DescribeOperation(op.Input, op.Output)))
		}
	}
	return out
}

// lostWrites looks every acknowledged write up at its revision on every
// given member: a put must be there with that mod_revision, a delete must
// have left nothing. A write below the member's compaction revision can no
// longer be read at its revision and is left to the state hashes.
func (c *cluster) lostWrites(ms []*member) []string {
	var out []string
	for _, w := range c.acked {
		for _, m := range ms {
			resp, err := m.sm.KV().Range(bg, &pb.RangeRequest{Key: []byte(w.key), Revision: w.rev})
			if errors.Is(err, mvcc.ErrCompacted) {
				continue
			}
			if err != nil {
				out = append(out, fmt.Sprintf("member %x: read %s at %d: %v", m.id, w.key, w.rev, err))
				continue
			}
			got := rangeOutput(resp)
			switch {
			case w.deleted && got.Rev != 0:
				out = append(out, fmt.Sprintf("acknowledged delete of %s at revision %d lost on member %x: it has %q@%d", w.key, w.rev, m.id, got.Value, got.Rev))
			case !w.deleted && (got.Rev != w.rev || got.Value != w.value):
				out = append(out, fmt.Sprintf("acknowledged write %s=%q at revision %d lost on member %x: it has %q@%d", w.key, w.value, w.rev, m.id, got.Value, got.Rev))
			}
			if len(out) >= 10 {
				return out
			}
		}
	}
	return out
}
