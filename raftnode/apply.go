package raftnode

import (
	"fmt"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// applyEntries applies committed entries in order, along one path: every
// run of consecutive normal entries not yet applied (client requests, and
// the empty entries a new leader appends) goes to the state machine as one
// Applier.Apply; a configuration change is applied alone between runs.
// Entries at or below the applied index were applied before a restart and
// are skipped, except that raft itself must relearn configuration changes.
func (c *Core) applyEntries(ents []*raftpb.Entry) error {
	if len(ents) == 0 {
		return nil
	}
	for rest := ents; len(rest) > 0; {
		k := c.normalRun(rest)
		if k == 0 {
			if err := c.applyConfEntry(rest[0]); err != nil {
				return err
			}
			k = 1
		} else if err := c.applyRun(rest[:k]); err != nil {
			return err
		}
		rest = rest[k:]
	}
	c.appliedTermPub.Store(c.appliedTerm)
	c.aw.advance(c.appliedIndex)
	return nil
}

// normalRun returns how many entries at the start of ents are normal
// entries; those already applied are counted too (applyRun skips them).
func (c *Core) normalRun(ents []*raftpb.Entry) int {
	k := 0
	for k < len(ents) && ents[k].GetType() == raftpb.EntryType_EntryNormal {
		k++
	}
	return k
}

// fresh reports whether the entry at idx is not yet reflected in the state
// (always, in a synod_unsafe_reapply build: the planted bug).
func (c *Core) fresh(idx uint64) bool { return idx > c.appliedIndex || unsafeReapply }

// applyConfEntry applies one configuration change entry.
func (c *Core) applyConfEntry(e *raftpb.Entry) error {
	idx, term := e.GetIndex(), e.GetTerm()
	fresh := c.fresh(idx)
	var err error
	switch e.GetType() {
	case raftpb.EntryType_EntryConfChange:
		err = c.applyConfChange(e, fresh)
	case raftpb.EntryType_EntryConfChangeV2:
		var cc raftpb.ConfChangeV2
		if err = proto.Unmarshal(e.GetData(), &cc); err == nil {
			c.confState = c.rn.ApplyConfChange(&cc)
			if fresh {
				err = c.applyRun([]*raftpb.Entry{{Index: e.Index, Term: e.Term}})
			}
		}
	default:
		err = fmt.Errorf("unknown entry type %v", e.GetType())
	}
	if err != nil {
		return fmt.Errorf("raftnode: apply entry %d (term %d): %w", idx, term, err)
	}
	if fresh {
		c.appliedIndex, c.appliedTerm = idx, term
	}
	return nil
}

// applyRun decodes the run's entries not yet applied, applies them with
// one Applier.Apply, and then answers their proposers, once the whole run
// is applied and visible. An entry without data (a new leader's empty
// entry) is a Request without Req.
func (c *Core) applyRun(ents []*raftpb.Entry) error {
	for len(ents) > 0 && !c.fresh(ents[0].GetIndex()) {
		ents = ents[1:]
	}
	if len(ents) == 0 {
		return nil
	}
	reqs := make([]Request, len(ents))
	for i, e := range ents {
		reqs[i] = Request{Index: e.GetIndex(), Term: e.GetTerm()}
		if len(e.GetData()) == 0 {
			continue
		}
		reqs[i].Req = new(etcdserverpb.InternalRaftRequest)
		if err := proto.Unmarshal(e.GetData(), reqs[i].Req); err != nil {
			return fmt.Errorf("raftnode: apply entry %d (term %d): decode request: %w", e.GetIndex(), e.GetTerm(), err)
		}
	}
	res := make([]Result, len(ents))
	if err := c.cfg.Applier.Apply(reqs, res); err != nil {
		first, last := ents[0], ents[len(ents)-1]
		return fmt.Errorf("raftnode: apply entries %d-%d (term %d-%d): %w", first.GetIndex(), last.GetIndex(), first.GetTerm(), last.GetTerm(), err)
	}
	last := ents[len(ents)-1]
	c.appliedIndex, c.appliedTerm = last.GetIndex(), last.GetTerm()
	for i, r := range reqs {
		if id := r.Req.GetHeader().GetID(); id != 0 {
			c.wait.trigger(id, res[i])
		}
	}
	return nil
}
