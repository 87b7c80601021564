package statemachine

import (
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/synod-db/synod/lease"
	"github.com/synod-db/synod/mvcc"
	"github.com/synod-db/synod/raftnode"
)

// applyLease applies a LeaseGrant, LeaseRevoke or LeaseCheckpoint entry
// through the pure lessor (plan, write in the run's batch, commit to
// memory) and returns the events of the revocation's deletes; ok is false
// for any other request.
func (m *Machine) applyLease(g *mvcc.Group, index, term uint64, req *pb.InternalRaftRequest) (res raftnode.Result, evs []*mvccpb.Event, ok bool, err error) {
	l := m.lessor
	var c lease.Change
	var reqErr error
	switch {
	case req.LeaseGrant != nil:
		c, reqErr = l.PlanGrant(req.LeaseGrant.GetID(), req.LeaseGrant.GetTTL(), index)
	case req.LeaseRevoke != nil:
		c, reqErr = l.PlanRevoke(req.LeaseRevoke.GetID())
	case req.LeaseCheckpoint != nil:
		c, reqErr = l.PlanCheckpoints(req.LeaseCheckpoint.GetCheckpoints(), index)
	default:
		return raftnode.Result{}, nil, false, nil
	}
	if evs, err = m.commitLease(g, index, term, c); err != nil {
		return raftnode.Result{}, nil, true, err
	}
	if reqErr != nil {
		return raftnode.Result{Err: reqErr}, evs, true, nil
	}
	hdr := &pb.ResponseHeader{Revision: g.Rev()}
	switch {
	case req.LeaseGrant != nil:
		res.Resp = &pb.LeaseGrantResponse{Header: hdr, ID: c.Put[0].ID, TTL: c.Put[0].TTL}
	case req.LeaseRevoke != nil:
		res.Resp = &pb.LeaseRevokeResponse{Header: hdr}
	default:
		res.Resp = &pb.LeaseCheckpointResponse{Header: hdr}
	}
	return res, evs, true, nil
}

// commitLease writes c and the applied index into the run's batch.
// Removing leases deletes their keys as one Txn of single-key deletes: one
// revision, whose events watchers receive together.
func (m *Machine) commitLease(g *mvcc.Group, index, term uint64, c lease.Change) ([]*mvccpb.Event, error) {
	if len(c.Remove) == 0 {
		if err := g.ApplyOther(index, term, c.Write); err != nil {
			return nil, err
		}
		m.lessor.Commit(c)
		return nil, nil
	}
	res, err := g.ApplyWith(index, term, &pb.InternalRaftRequest{Txn: revokeTxn(c.DeleteKeys)}, c.Write)
	if err != nil {
		return nil, err
	}
	if res.Err != nil { // a txn of plain deletes has no request error
		return nil, fmt.Errorf("statemachine: revoke leases %v: %w", c.Remove, res.Err)
	}
	m.lessor.Commit(c)
	m.lessor.ApplyEvents(res.Events)
	return res.Events, nil
}

// revokeTxn is the Txn deleting a revoked lease's keys one by one.
func revokeTxn(keys [][]byte) *pb.TxnRequest {
	txn := &pb.TxnRequest{Success: make([]*pb.RequestOp, len(keys))}
	for i, k := range keys {
		txn.Success[i] = &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{
			RequestDeleteRange: &pb.DeleteRangeRequest{Key: k},
		}}
	}
	return txn
}
