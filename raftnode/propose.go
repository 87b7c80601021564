package raftnode

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// proposal is one request on its way into the raft log.
type proposal struct {
	ctx  context.Context
	id   uint64
	data []byte
	cc   *raftpb.ConfChange // set for a membership change (data unused)
}

// maxProposalBatch bounds how many proposals one turn of the loop steps into
// raft as a single MsgProp.
const maxProposalBatch = 512

// Propose replicates req through raft and returns the result of applying it
// on this member. It assigns req.Header.ID. It fails promptly with
// ErrNoLeader when no leader is known, ErrTooManyRequests when the queue is
// full, and ErrTimeout when the request timeout or the caller's deadline
// passes first; a caller that gives up leaves nothing behind but the entry
// itself, if raft already accepted it.
func (n *Node) Propose(ctx context.Context, req *etcdserverpb.InternalRaftRequest) (Result, error) {
	r, err := n.propose(ctx, req)
	if err != nil {
		n.c.stats.proposalsFailed.Add(1)
	}
	return r, err
}

// propose is Propose without the failure count.
func (n *Node) propose(ctx context.Context, req *etcdserverpb.InternalRaftRequest) (Result, error) {
	if n.c.lead.Load() == 0 {
		return Result{}, ErrNoLeader
	}
	t := n.startTimer()
	defer stopTimer(t)
	p, err := n.c.newProposal(ctx, req)
	if err != nil {
		return Result{}, err
	}
	return n.submit(ctx, t.C, p)
}

// newProposal stamps req with a fresh request ID, keeping the caller's
// identity (Username, AuthRevision) that the API edge stamped for the
// permission checks on apply, and encodes it.
func (c *Core) newProposal(ctx context.Context, req *etcdserverpb.InternalRaftRequest) (*proposal, error) {
	id := c.idg.next()
	req.Header = &etcdserverpb.RequestHeader{ID: id, Username: req.GetHeader().GetUsername(), AuthRevision: req.GetHeader().GetAuthRevision()}
	data, err := proto.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("raftnode: marshal proposal: %w", err)
	}
	return &proposal{ctx: ctx, id: id, data: data}, nil
}

// submit registers p's waiter, hands p to the raft loop without blocking
// (a full queue is ErrTooManyRequests) and waits for it to be applied, at
// most until timeout fires (ErrTimeout).
func (n *Node) submit(ctx context.Context, timeout <-chan time.Time, p *proposal) (Result, error) {
	ch := n.c.wait.register(p.id)
	select {
	case n.propc <- p:
	case <-ctx.Done():
		n.c.wait.cancel(p.id)
		return Result{}, ctxErr(ctx)
	case <-n.done:
		n.c.wait.cancel(p.id)
		return Result{}, ErrStopped
	default:
		n.c.wait.cancel(p.id)
		return Result{}, ErrTooManyRequests
	}
	return n.waitApplied(ctx, timeout, p.id, ch)
}

// waitApplied waits for the proposal id to be applied. If the member loses
// its leader meanwhile (check-quorum stepped it down, or its leader went
// silent) the caller learns at once, with an error that says the outcome is
// unknown, rather than waiting out the whole request timeout.
func (n *Node) waitApplied(ctx context.Context, timeout <-chan time.Time, id uint64, ch <-chan Result) (Result, error) {
	for {
		changed := n.LeaderChanged()
		select {
		case r := <-ch:
			if r.Err != nil && r.Resp == nil && isNodeErr(r.Err) {
				return Result{}, r.Err
			}
			return r, nil
		case <-changed:
			if n.c.lead.Load() == 0 {
				n.c.wait.cancel(id)
				return Result{}, ErrLeaderLost
			}
		case <-timeout:
			n.c.wait.cancel(id)
			return Result{}, ErrTimeout
		case <-ctx.Done():
			n.c.wait.cancel(id)
			return Result{}, ctxErr(ctx)
		case <-n.done:
			n.c.wait.cancel(id)
			return Result{}, ErrStopped
		}
	}
}

func isNodeErr(err error) bool {
	return errors.Is(err, ErrStopped) || errors.Is(err, ErrNoLeader) || errors.Is(err, ErrTimeout) ||
		errors.Is(err, ErrConfChangePending)
}

// ctxErr maps a finished context to the error callers see: a passed deadline
// is etcd's "request timed out"; a cancellation is the context's own error.
func ctxErr(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return ErrTimeout
	}
	return ctx.Err()
}

// stepProposals steps a batch of proposals into raft as one MsgProp. Those
// whose callers already left are skipped; if raft drops the batch (no
// leader, leadership transfer) every caller is told at once.
func (c *Core) stepProposals(batch []*proposal) {
	ents := make([]*raftpb.Entry, 0, len(batch))
	live := batch[:0]
	for _, p := range batch {
		if p.ctx.Err() != nil {
			continue
		}
		if p.cc != nil {
			c.stepConfChange(p)
			continue
		}
		ents = append(ents, &raftpb.Entry{Data: p.data})
		live = append(live, p)
	}
	if len(ents) == 0 {
		return
	}
	m := &raftpb.Message{Type: raftpb.MessageType_MsgProp.Enum(), From: proto.Uint64(c.cfg.ID), Entries: ents}
	if err := c.rn.Step(m); err != nil {
		for _, p := range live {
			c.wait.trigger(p.id, Result{Err: ErrNoLeader})
		}
	}
}

// drainProposals collects first and whatever else is queued, up to the batch
// limit, without blocking.
func (n *Node) drainProposals(first *proposal) []*proposal {
	batch := []*proposal{first}
	for len(batch) < maxProposalBatch {
		select {
		case p := <-n.propc:
			batch = append(batch, p)
		default:
			return batch
		}
	}
	return batch
}
