package raftnode

import (
	"context"
	"encoding/binary"
)

// readRequest is one caller waiting for a read index.
type readRequest struct {
	ctx context.Context
	ch  chan readResult // buffered 1
}

type readResult struct {
	index uint64
	err   error
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
	if n.lead.Load() == 0 {
		return ErrNoLeader
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.RequestTimeout)
	defer cancel()
	r := &readRequest{ctx: ctx, ch: make(chan readResult, 1)}
	select {
	case n.readc <- r:
	case <-ctx.Done():
		return ctxErr(ctx)
	case <-n.done:
		return ErrStopped
	default:
		return ErrTooManyRequests
	}
	var res readResult
	select {
	case res = <-r.ch:
	case <-ctx.Done():
		return ctxErr(ctx)
	case <-n.done:
		return ErrStopped
	}
	if res.err != nil {
		return res.err
	}
	select {
	case <-n.aw.wait(res.index):
		if n.aw.get() < res.index {
			return ErrStopped
		}
		return nil
	case <-ctx.Done():
		return ctxErr(ctx)
	}
}

// issueReads starts one ReadIndex round for every read that is pending. As
// in etcd, at most one round is in flight: reads arriving meanwhile wait for
// it to finish and then share the next one, so under load the quorum rounds
// (heartbeat broadcasts) stay few and each serves many reads.
func (n *Node) issueReads() {
	rb := &n.reads
	if len(rb.pending) == 0 || len(rb.inflight) > 0 {
		return
	}
	if n.lead.Load() == 0 {
		n.failReads(rb.pending, ErrNoLeader)
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
	n.rn.ReadIndex(encodeReadID(b.requestID))
}

// retryReads re-issues rounds that got no answer within a few heartbeats
// (the request or its answer was lost, or the leader changed), and fails
// every read when the member lost its leader.
func (n *Node) retryReads() {
	rb := &n.reads
	rb.ticks++
	if len(rb.inflight) == 0 {
		return
	}
	if n.lead.Load() == 0 {
		for id, b := range rb.inflight {
			n.failReads(b.reqs, ErrNoLeader)
			delete(rb.inflight, id)
		}
		return
	}
	limit := uint64(2*n.cfg.HeartbeatTicks + 1)
	for _, b := range rb.inflight {
		if rb.ticks-b.issuedAt >= limit {
			b.issuedAt = rb.ticks
			n.rn.ReadIndex(encodeReadID(b.requestID))
		}
	}
}

// serveReads delivers the read index raft returned for each answered round.
func (n *Node) serveReads(states []readState) {
	for _, rs := range states {
		id, ok := decodeReadID(rs.ctx)
		if !ok {
			continue
		}
		b, ok := n.reads.inflight[id]
		if !ok {
			continue
		}
		delete(n.reads.inflight, id)
		for _, r := range b.reqs {
			r.ch <- readResult{index: rs.index}
		}
	}
}

type readState struct {
	index uint64
	ctx   []byte
}

func (n *Node) failReads(reqs []*readRequest, err error) {
	for _, r := range reqs {
		r.ch <- readResult{err: err}
	}
}

func (n *Node) failAllReads(err error) {
	n.failReads(n.reads.pending, err)
	n.reads.pending = nil
	for id, b := range n.reads.inflight {
		n.failReads(b.reqs, err)
		delete(n.reads.inflight, id)
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
