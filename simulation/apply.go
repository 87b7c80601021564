package simulation

import (
	"context"
	"fmt"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

var bg = context.Background()

// applyEntries applies committed entries in order, as raftnode/apply.go
// does: entries at or below the store's applied index were applied before a
// crash and are skipped (unless built with synod_unsafe_reapply), except
// that raft must relearn every configuration change.
func (m *member) applyEntries(ents []*raftpb.Entry) error {
	for _, e := range ents {
		if err := m.applyEntry(e); err != nil {
			return fmt.Errorf("apply entry %d (term %d): %w", e.GetIndex(), e.GetTerm(), err)
		}
	}
	if len(ents) > 0 {
		m.serveReads()
	}
	return nil
}

func (m *member) applyEntry(e *raftpb.Entry) error {
	idx, term := e.GetIndex(), e.GetTerm()
	fresh := idx > m.applied || unsafeReapply
	var err error
	switch e.GetType() {
	case raftpb.EntryType_EntryConfChange:
		err = m.applyConfChange(e, fresh)
	case raftpb.EntryType_EntryNormal:
		if fresh {
			err = m.applyNormal(e)
		}
	default:
		return fmt.Errorf("unexpected entry type %s", e.GetType())
	}
	if err != nil {
		return err
	}
	if fresh {
		m.applied = idx
		m.c.tracef("apply %x %d/%d", m.id, idx, term)
	}
	return nil
}

// applyNormal applies a client request (or a leader's empty entry) to the
// mvcc store and answers the call waiting for it on this member.
func (m *member) applyNormal(e *raftpb.Entry) error {
	store := m.disk.store
	if len(e.GetData()) == 0 {
		return store.ApplyOther(e.GetIndex(), e.GetTerm(), nil)
	}
	var req etcdserverpb.InternalRaftRequest
	if err := proto.Unmarshal(e.GetData(), &req); err != nil {
		return fmt.Errorf("decode request: %w", err)
	}
	var resp proto.Message
	var reqErr error
	if isLeaseRequest(&req) {
		var err error
		if reqErr, err = m.applyLease(e.GetIndex(), e.GetTerm(), &req); err != nil {
			return err
		}
	} else {
		res, err := store.Apply(e.GetIndex(), e.GetTerm(), &req)
		if err != nil {
			return err
		}
		m.lessor.ApplyEvents(res.Events)
		resp, reqErr = res.Resp, res.Err
	}
	m.answer(req.GetHeader().GetID(), resp, reqErr)
	return nil
}

// answer finishes the call waiting on this member for request id.
func (m *member) answer(id uint64, resp proto.Message, reqErr error) {
	for i, w := range m.writes {
		if w.id != id {
			continue
		}
		m.writes = append(m.writes[:i], m.writes[i+1:]...)
		if reqErr != nil {
			w.finish(outcomeFailed, nil)
		} else {
			w.finish(outcomeOK, resp)
		}
		return
	}
}

// applyConfChange validates a membership change against the current
// configuration, as the server's applier does, turning an invalid one into
// a no-op (node ID 0), and hands it to raft.
func (m *member) applyConfChange(e *raftpb.Entry, fresh bool) error {
	var cc raftpb.ConfChange
	if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
		return fmt.Errorf("decode conf change: %w", err)
	}
	if !validChange(m.confState, &cc) {
		cc.NodeId = proto.Uint64(0)
	}
	m.confState = m.rn.ApplyConfChange(&cc)
	if !fresh {
		return nil
	}
	if err := m.disk.store.ApplyOther(e.GetIndex(), e.GetTerm(), nil); err != nil {
		return err
	}
	if cc.GetNodeId() != 0 {
		m.c.tracef("conf %x %s %x", m.id, cc.GetType(), cc.GetNodeId())
		m.c.confChanged(&cc)
	}
	return nil
}

// validChange reports whether cc makes sense in cs: a learner is added only
// if the ID is new, a voter only if it is not a voter already (new, or a
// learner being promoted), and only a current member is removed.
func validChange(cs *raftpb.ConfState, cc *raftpb.ConfChange) bool {
	id := cc.GetNodeId()
	voter, learner := contains(cs.GetVoters(), id), contains(cs.GetLearners(), id)
	switch cc.GetType() {
	case raftpb.ConfChangeType_ConfChangeAddLearnerNode:
		return !voter && !learner
	case raftpb.ConfChangeType_ConfChangeAddNode:
		return !voter
	case raftpb.ConfChangeType_ConfChangeRemoveNode:
		return voter || learner
	}
	return false
}

func contains(ids []uint64, id uint64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}
