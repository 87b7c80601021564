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
	if len(ents) == 0 {
		return nil
	}
	for rest := ents; len(rest) > 0; {
		if k := n.requestRun(rest); k > 1 {
			if err := n.applyRun(rest[:k]); err != nil {
				return err
			}
			rest = rest[k:]
			continue
		}
		if err := n.applyEntry(rest[0]); err != nil {
			return err
		}
		rest = rest[1:]
	}
	n.appliedTermPub.Store(n.appliedTerm)
	n.aw.advance(n.appliedIndex)
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

// requestRun returns how many entries at the start of ents form a run for
// ApplyBatch: client requests (normal entries with data) not yet applied.
// 0 when the Applier is not a BatchApplier.
func (n *Node) requestRun(ents []*raftpb.Entry) int {
	if _, ok := n.cfg.Applier.(BatchApplier); !ok || unsafeReapply {
		return 0
	}
	k := 0
	for _, e := range ents {
		if e.GetType() != raftpb.EntryType_EntryNormal || len(e.GetData()) == 0 || e.GetIndex() <= n.appliedIndex {
			break
		}
		k++
	}
	return k
}

// applyRun applies a run of client requests (requestRun) with one
// ApplyBatch and then answers their proposers, once the whole run is
// applied and visible.
func (n *Node) applyRun(ents []*raftpb.Entry) error {
	reqs := make([]Request, len(ents))
	for i, e := range ents {
		reqs[i] = Request{Index: e.GetIndex(), Term: e.GetTerm(), Req: new(etcdserverpb.InternalRaftRequest)}
		if err := proto.Unmarshal(e.GetData(), reqs[i].Req); err != nil {
			return fmt.Errorf("raftnode: apply entry %d (term %d): decode request: %w", e.GetIndex(), e.GetTerm(), err)
		}
	}
	res := make([]Result, len(ents))
	if err := n.cfg.Applier.(BatchApplier).ApplyBatch(reqs, res); err != nil {
		first, last := ents[0], ents[len(ents)-1]
		return fmt.Errorf("raftnode: apply entries %d-%d (term %d-%d): %w", first.GetIndex(), last.GetIndex(), first.GetTerm(), last.GetTerm(), err)
	}
	last := ents[len(ents)-1]
	n.appliedIndex, n.appliedTerm = last.GetIndex(), last.GetTerm()
	for i, r := range reqs {
		if id := r.Req.GetHeader().GetID(); id != 0 {
			n.wait.trigger(id, res[i])
		}
	}
	return nil
}
