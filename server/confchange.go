package server

import (
	"fmt"

	"github.com/cockroachdb/pebble"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/membership"
	"github.com/synod-db/synod/raftnode"
)

// A conf change's Context is the marshaled etcdserverpb.Member for an add
// or an update (the founding members' bootstrap entries included). A
// promotion is an AddNode with an empty Context: etcd marks it IsPromote.

// decodeChange turns a raft conf change into a membership.Change.
func decodeChange(cc *raftpb.ConfChange) (membership.Change, error) {
	c := membership.Change{Type: cc.GetType(), ID: cc.GetNodeId()}
	switch cc.GetType() {
	case raftpb.ConfChangeType_ConfChangeAddNode, raftpb.ConfChangeType_ConfChangeAddLearnerNode,
		raftpb.ConfChangeType_ConfChangeUpdateNode:
		if len(cc.GetContext()) == 0 && cc.GetType() == raftpb.ConfChangeType_ConfChangeAddNode {
			c.Promote = true
			return c, nil
		}
		mem := &etcdserverpb.Member{}
		if err := proto.Unmarshal(cc.GetContext(), mem); err != nil {
			return c, fmt.Errorf("server: decode member in conf change: %w", err)
		}
		mem.ID = c.ID
		mem.IsLearner = cc.GetType() == raftpb.ConfChangeType_ConfChangeAddLearnerNode
		c.Member = mem
	}
	return c, nil
}

// ApplyConfChange validates a membership change against the applied
// membership (as etcd does, on every member alike) and applies it, in one
// batch with the applied index. A rejected change is recorded and answered
// with the validation error; raftnode then hands raft an empty change.
func (a applier) ApplyConfChange(index, term uint64, cc *raftpb.ConfChange) (raftnode.Result, error) {
	c, verdict := decodeChange(cc)
	if verdict == nil {
		verdict = membership.Validate(a.m.members.state(a.m.cfg.MaxLearners), c)
	}
	err := a.m.store.ApplyOther(index, term, func(b *pebble.Batch) error {
		if verdict != nil {
			return recordRejected(b, index)
		}
		return a.m.members.apply(b, c)
	})
	if err != nil {
		return raftnode.Result{}, err
	}
	if verdict != nil {
		a.m.log.Warn("rejected a configuration change", "type", cc.GetType().String(),
			"member-id", fmt.Sprintf("%x", c.ID), "err", verdict)
		return raftnode.Result{Err: verdict}, nil
	}
	a.m.afterChange(c)
	resp := &etcdserverpb.MemberAddResponse{Members: a.m.members.list()}
	if c.Member != nil {
		resp.Member = &etcdserverpb.Member{ID: c.ID, PeerURLs: c.Member.GetPeerURLs(), IsLearner: c.Member.GetIsLearner()}
	}
	return raftnode.Result{Resp: resp}, nil
}

// ConfChangeRejected reports whether the conf change at index was rejected
// when it was first applied.
func (a applier) ConfChangeRejected(index uint64) (bool, error) { return wasRejected(a.m.db, index) }

// afterChange points the transport at the new membership and stops this
// member when it was removed.
func (m *Member) afterChange(c membership.Change) {
	switch {
	case c.Type == raftpb.ConfChangeType_ConfChangeRemoveNode && c.ID == m.id:
		m.removedFromCluster()
	case c.Type == raftpb.ConfChangeType_ConfChangeRemoveNode:
		m.tr.RemovePeer(c.ID)
	case c.Member != nil && c.ID != m.id:
		if cur, ok := m.members.get(c.ID); ok {
			m.tr.AddPeer(c.ID, cur.PeerURLs)
		}
	}
	m.log.Info("applied a configuration change", "type", c.Type.String(), "member-id", fmt.Sprintf("%x", c.ID),
		"promote", c.Promote)
}
