package raftnode

import (
	"context"
	"fmt"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// ProposeConfChange replicates a membership change through raft (a V1
// ConfChange, as etcd uses) and returns what the Applier answered when the
// change was applied on this member. It assigns cc.Id and keys its waiter by
// it. Like Propose it honours ctx (capped at the request timeout), fails
// with ErrNoLeader at once when no leader is known and with ErrLeaderLost
// when the leader goes away meanwhile. When this member is the leader and
// raft drops the change because an earlier one is not applied yet, it
// answers ErrConfChangePending at once instead of waiting out the timeout.
// A change rejected by the Applier's validation is still an entry in the
// log; raft sees it with node ID 0, which changes nothing.
func (n *Node) ProposeConfChange(ctx context.Context, cc *raftpb.ConfChange) (Result, error) {
	if n.c.lead.Load() == 0 {
		return Result{}, ErrNoLeader
	}
	ctx, cancel := context.WithTimeout(ctx, n.c.cfg.RequestTimeout)
	defer cancel()
	if err := n.waitOwnTermApplied(ctx); err != nil {
		return Result{}, err
	}
	id := n.c.idg.next()
	cc.Id = proto.Uint64(id)
	return n.submit(ctx, nil, &proposal{ctx: ctx, id: id, cc: cc}) // ctx carries the timeout
}

// waitOwnTermApplied holds a conf change proposed on a new leader until the
// leader has applied an entry of its own term: until then raft refuses conf
// changes (it cannot know whether one is pending in the entries it
// inherited), and a change that arrives right after a leadership transfer
// would be dropped for nothing.
func (n *Node) waitOwnTermApplied(ctx context.Context) error {
	for n.c.isLeader.Load() && n.c.appliedTermPub.Load() < n.c.term.Load() {
		select {
		case <-n.c.aw.wait(n.c.aw.get() + 1):
		case <-ctx.Done():
			return ctxErr(ctx)
		case <-n.done:
			return ErrStopped
		}
	}
	return nil
}

// stepConfChange steps one conf change proposal into raft. On the leader
// raft appends it to its log at once (and the Ready handled in this same turn
// of the loop carries it) unless it drops it, so the loop remembers the ID
// and failDroppedConfChanges answers the caller if the entry never showed.
func (c *Core) stepConfChange(p *proposal) {
	if err := c.rn.ProposeConfChange(p.cc); err != nil {
		c.wait.trigger(p.id, Result{Err: ErrNoLeader})
		return
	}
	if c.rn.BasicStatus().RaftState == raft.StateLeader {
		if c.ccExpected == nil {
			c.ccExpected = map[uint64]struct{}{}
		}
		c.ccExpected[p.id] = struct{}{}
	}
}

// noteConfChanges clears the expectation for every conf change raft
// appended to the log in this Ready.
func (c *Core) noteConfChanges(ents []*raftpb.Entry) {
	if len(c.ccExpected) == 0 {
		return
	}
	for _, e := range ents {
		if e.GetType() != raftpb.EntryType_EntryConfChange {
			continue
		}
		var cc raftpb.ConfChange
		if proto.Unmarshal(e.GetData(), &cc) == nil {
			delete(c.ccExpected, cc.GetId())
		}
	}
}

// failDroppedConfChanges answers the callers of conf changes the leader
// stepped but raft did not append: raft replaces a conf change with an empty
// entry while an earlier one is unapplied.
func (c *Core) failDroppedConfChanges() {
	for id := range c.ccExpected {
		c.wait.trigger(id, Result{Err: ErrConfChangePending})
		delete(c.ccExpected, id)
	}
}

// applyConfChange validates and applies one conf change entry. A fresh entry
// goes through the Applier, which may reject it (Result.Err); an entry
// already applied before a restart is replayed into raft only, with the
// Applier's recorded verdict. Either way raft sees a rejected change with
// node ID 0, which it ignores, so every member's raft configuration agrees.
func (c *Core) applyConfChange(e *raftpb.Entry, fresh bool) error {
	var cc raftpb.ConfChange
	if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
		return fmt.Errorf("decode conf change: %w", err)
	}
	var res Result
	if fresh {
		var err error
		if res, err = c.cfg.Applier.ApplyConfChange(e.GetIndex(), e.GetTerm(), &cc); err != nil {
			return err
		}
	} else {
		rejected, err := c.cfg.Applier.ConfChangeRejected(e.GetIndex())
		if err != nil {
			return err
		}
		if rejected {
			res.Err = ErrConfChangeRejected
		}
	}
	if res.Err != nil {
		cc.NodeId = proto.Uint64(raft.None)
	}
	c.confState = c.rn.ApplyConfChange(&cc)
	if fresh && cc.GetId() != 0 {
		c.wait.trigger(cc.GetId(), res)
	}
	return nil
}
