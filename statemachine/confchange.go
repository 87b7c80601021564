package statemachine

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
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
		mem := &pb.Member{}
		if err := proto.Unmarshal(cc.GetContext(), mem); err != nil {
			return c, fmt.Errorf("statemachine: decode member in conf change: %w", err)
		}
		mem.ID = c.ID
		mem.IsLearner = cc.GetType() == raftpb.ConfChangeType_ConfChangeAddLearnerNode
		c.Member = mem
	}
	return c, nil
}

// ApplyConfChange validates a membership change against the applied
// membership (as etcd does, on every member alike: the one place of the
// membership verdict) and applies it, in one batch with the applied index.
// A rejected change is recorded and answered with the validation error;
// raftnode then hands raft an empty change. An accepted one is passed to
// Config.OnConfChange.
func (m *Machine) ApplyConfChange(index, term uint64, cc *raftpb.ConfChange) (raftnode.Result, error) {
	c, verdict := decodeChange(cc)
	if verdict == nil {
		verdict = membership.Validate(m.members.State(m.cfg.MaxLearners), c)
	}
	err := m.kv.ApplyOther(index, term, func(b *pebble.Batch) error {
		if verdict != nil {
			return membership.RecordRejected(b, index)
		}
		return m.members.Apply(b, c)
	})
	if err != nil {
		return raftnode.Result{}, err
	}
	if verdict != nil {
		m.log.Warn("rejected a configuration change", "type", cc.GetType().String(),
			"member-id", fmt.Sprintf("%x", c.ID), "err", verdict)
		return raftnode.Result{Err: verdict}, nil
	}
	if m.cfg.OnConfChange != nil {
		m.cfg.OnConfChange(c)
	}
	resp := &pb.MemberAddResponse{Members: m.members.List()}
	if c.Member != nil {
		resp.Member = &pb.Member{ID: c.ID, PeerURLs: c.Member.GetPeerURLs(), IsLearner: c.Member.GetIsLearner()}
	}
	return raftnode.Result{Resp: resp}, nil
}

// ConfChangeRejected reports whether the conf change at index was rejected
// when it was first applied.
func (m *Machine) ConfChangeRejected(index uint64) (bool, error) {
	return membership.WasRejected(m.cfg.DB, index)
}
