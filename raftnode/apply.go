package raftnode

import (
	"fmt"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// applyEntries applies committed entries in order. Entries at or below the
// state's applied index were applied before a restart and are skipped, except
// that raft itself must relearn configuration changes.
func (n *Node) applyEntries(ents []*raftpb.Entry) error {
	for _, e := range ents {
		if err := n.applyEntry(e); err != nil {
			return err
		}
	}
	if len(ents) > 0 {
		n.appliedTermPub.Store(n.appliedTerm)
		n.aw.advance(n.appliedIndex)
	}
	return nil
}

func (n *Node) applyEntry(e *raftpb.Entry) error {
	idx, term := e.GetIndex(), e.GetTerm()
	fresh := idx > n.appliedIndex || unsafeReapply
	var err error
	switch e.GetType() {
	case raftpb.EntryType_EntryConfChange:
		err = n.applyConfChange(e, fresh)
	case raftpb.EntryType_EntryConfChangeV2:
		var cc raftpb.ConfChangeV2
		if err = proto.Unmarshal(e.GetData(), &cc); err == nil {
			n.confState = n.rn.ApplyConfChange(&cc)
			if fresh {
				err = n.cfg.Applier.ApplyNoop(idx, term)
			}
		}
	default:
		if fresh {
			err = n.applyNormal(e)
		}
	}
	if err != nil {
		return fmt.Errorf("raftnode: apply entry %d (term %d): %w", idx, term, err)
	}
	if fresh {
		n.appliedIndex, n.appliedTerm = idx, term
	}
	return nil
}

func (n *Node) applyNormal(e *raftpb.Entry) error {
	if len(e.GetData()) == 0 {
		return n.cfg.Applier.ApplyNoop(e.GetIndex(), e.GetTerm())
	}
	var req etcdserverpb.InternalRaftRequest
	if err := proto.Unmarshal(e.GetData(), &req); err != nil {
		return fmt.Errorf("decode request: %w", err)
	}
	res, err := n.cfg.Applier.Apply(e.GetIndex(), e.GetTerm(), &req)
	if err != nil {
		return err
	}
	if id := req.GetHeader().GetID(); id != 0 {
		n.wait.trigger(id, res)
	}
	return nil
}
