package raftnode

import (
	"context"
	"encoding/binary"
)

// readRequest is one caller waiting for a read index.
type readRequest struct {
	ctx context.Context
	ch  chan ReadResult // buffered 1
}

// ReadResult is the answer to one read: the read index, or why there is none.
type ReadResult struct {
	// Index is the commit index at the read's ReadIndex round.
	Index uint64
	// Err is ErrNoLeader or ErrStopped when the read was failed.
	Err error
}

// readBatch is a group of reads served by one raft ReadIndex round.
type readBatch struct {
	reqs      []*readRequest
	issuedAt  uint64 // tick count when last (re)issued
	requestID uint64
}

// readBatches is loop-owned bookkeeping for linearizable reads.
type readBatches struct {
	pending  []*readRequest
	inflight map[uint64]*readBatch
	nextID   uint64
	ticks    uint64
}

// ReadIndex returns once this member has applied every entry committed at
// the moment of the call, so a local read afterwards is linearizable. All
// callers waiting at the same moment share one quorum round.
func (n *Node) ReadIndex(ctx context.Context) error {
	if n.c.lead.Load() == 0 {
		return ErrNoLeader
	}
	t := n.startTimer()
	defer stopTimer(t)
	r := &readRequest{ctx: ctx, ch: make(chan ReadResult, 1)}
	select {
	case n.readc <- r:
	case <-ctx.Done():
		return ctxErr(ctx)
	case <-n.done:
		return ErrStopped
	default:
		return ErrTooManyRequests
	}
	var res ReadResult
	select {
	case res = <-r.ch:
	case <-t.C:
		return ErrTimeout
	case <-ctx.Done():
		return ctxErr(ctx)
	case <-n.done:
		return ErrStopped
	}
	if res.Err != nil {
		return res.Err
	}
	select {
	case <-n.c.aw.wait(res.Index):
		if n.c.aw.get() < res.Index {
			return ErrStopped
		}
		return nil
	case <-t.C:
		return ErrTimeout
	case <-ctx.Done():
		return ctxErr(ctx)
	}
}

// issueReads starts one ReadIndex round for every read that is pending. As
// in etcd, at most one round is in flight: reads arriving meanwhile wait for
// it to finish and then share the next one, so under load the quorum rounds
// (heartbeat broadcasts) stay few and each serves many reads.
func (c *Core) issueReads() {
	rb := &c.reads
	if len(rb.pending) == 0 || len(rb.inflight) > 0 {
		return
	}
	if c.lead.Load() == 0 {
		c.failReads(rb.pending, ErrNoLeader)
		rb.pending = nil
		return
	}
	if rb.inflight == nil {
		rb.inflight = make(map[uint64]*readBatch)
	}
	rb.nextID++
	b := &readBatch{reqs: rb.pending, issuedAt: rb.ticks, requestID: rb.nextID}
	rb.pending = nil
	rb.inflight[b.requestID] = b
	c.rn.ReadIndex(encodeReadID(b.requestID))
}

// retryReads re-issues rounds that got no answer within a few heartbeats
// (the request or its answer was lost, or the leader changed), and fails
// every read when the member lost its leader.
func (c *Core) retryReads() {
	rb := &c.reads
	rb.ticks++
	if len(rb.inflight) == 0 {
		return
	}
	if c.lead.Load() == 0 {
		for id, b := range rb.inflight {
			c.failReads(b.reqs, ErrNoLeader)
			delete(rb.inflight, id)
		}
		return
	}
	limit := uint64(2*c.cfg.HeartbeatTicks + 1)
	for _, b := range rb.inflight {
		if rb.ticks-b.issuedAt >= limit {
			b.issuedAt = rb.ticks
			c.rn.ReadIndex(encodeReadID(b.requestID))
		}
	}
}

// serveReads delivers the read index raft returned for each answered round.
func (c *Core) serveReads(states []readState) {
	for _, rs := range states {
		id, ok := decodeReadID(rs.ctx)
		if !ok {
			continue
		}
		b, ok := c.reads.inflight[id]
		if !ok {
			continue
		}
		delete(c.reads.inflight, id)
		for _, r := range b.reqs {
			r.ch <- ReadResult{Index: rs.index}
		}
	}
}

type readState struct {
	index uint64
	ctx   []byte
}

func (c *Core) failReads(reqs []*readRequest, err error) {
	for _, r := range reqs {
		r.ch <- ReadResult{Err: err}
	}
}

func (c *Core) failAllReads(err error) {
	c.failReads(c.reads.pending, err)
	c.reads.pending = nil
	for id, b := range c.reads.inflight {
		c.failReads(b.reqs, err)
		delete(c.reads.inflight, id)
	}
}

func encodeReadID(id uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], id)
	return b[:]
}

func decodeReadID(b []byte) (uint64, bool) {
	if len(b) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(b), true
}
