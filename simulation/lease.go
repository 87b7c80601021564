package simulation

import (
	"fmt"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/lease"
)

// Leases, as the server runs them (server/lease.go): grants, keep-alives
// and revocations are raft entries applied through the real lease.Lessor
// (on the simulated clock) and mvcc.Store; the leader proposes expiries,
// conditional on the renewal index it saw. Leased keys ("l0".."l3") are kept
// out of the linearizability history (a lease's end deletes them without a
// client call); checkLeases judges them instead.

// Lease workload and expiry duty.
const (
	numLeasedKeys  = 4
	leaseCheckTick = 500 // ms between the leader's expiry scans (server: 500 ms)
	maxLeaseTTL    = 3   // s; grants draw 1..maxLeaseTTL, so some expire in a run
)

// epoch is the simulated clock's zero.
var epoch = time.Unix(1_700_000_000, 0)

// now is the simulated clock as a time.Time (the lessor's clock).
func (c *cluster) now() time.Time { return epoch.Add(time.Duration(c.sched.now) * time.Millisecond) }

// newLessor makes the member's lessor on the simulated clock.
func (m *member) newLessor() { m.lessor = lease.New(lease.Config{Clock: m.c.now}) }

// loadLeases rebuilds the lessor from the lease records and the keyspace,
// at start and after a snapshot install.
func (m *member) loadLeases() error {
	recs, err := lease.ReadRecords(m.disk.db)
	if err != nil {
		return err
	}
	m.newLessor()
	return m.lessor.Load(recs, m.disk.store.LeasedKeys)
}

// isLeaseRequest reports whether req is for the lessor.
func isLeaseRequest(req *pb.InternalRaftRequest) bool {
	return req.LeaseGrant != nil || req.LeaseRevoke != nil || req.LeaseCheckpoint != nil
}

// applyLease applies a lease entry as the server's applier does; reqErr is
// the request's own (deterministic) error, err a fatal one.
func (m *member) applyLease(index, term uint64, req *pb.InternalRaftRequest) (reqErr, err error) {
	l := m.lessor
	var c lease.Change
	switch {
	case req.LeaseGrant != nil:
		c, reqErr = l.PlanGrant(req.LeaseGrant.GetID(), req.LeaseGrant.GetTTL(), index)
	case req.LeaseRevoke != nil:
		c, reqErr = l.PlanRevoke(req.LeaseRevoke.GetID())
	default:
		c, reqErr = l.PlanCheckpoints(req.LeaseCheckpoint.GetCheckpoints(), index)
	}
	if err := m.commitLease(index, term, c); err != nil {
		return nil, err
	}
	if len(c.Remove) > 0 {
		m.c.tracef("lease %x removed %x at %d", m.id, c.Remove, index)
	}
	return reqErr, nil
}

// commitLease writes c with the applied index in one batch; removed
// leases' keys are deleted in one revision (server/lease.go commitLease).
func (m *member) commitLease(index, term uint64, c lease.Change) error {
	if len(c.Remove) == 0 {
		if err := m.disk.store.ApplyOther(index, term, c.Write); err != nil {
			return err
		}
		m.lessor.Commit(c)
		return nil
	}
	txn := &pb.TxnRequest{Success: make([]*pb.RequestOp, len(c.DeleteKeys))}
	for i, k := range c.DeleteKeys {
		txn.Success[i] = &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: k}}}
	}
	res, err := m.disk.store.ApplyWith(index, term, &pb.InternalRaftRequest{Txn: txn}, c.Write)
	if err != nil {
		return err
	}
	if res.Err != nil {
		return fmt.Errorf("revoke leases %v: %w", c.Remove, res.Err)
	}
	m.lessor.Commit(c)
	m.lessor.ApplyEvents(res.Events)
	return nil
}

// expireLeases is the expiry duty of every running member that believes
// it leads (as the server runs it: a stale leader just resumed from a pause
// runs it too, until it hears of the new term): it proposes the expiry of
// every lease past its expiry on that member's clock, conditional on the
// renewal index it saw, then schedules itself again.
func (c *cluster) expireLeases() {
	for _, l := range c.live() {
		if !l.leader || l.paused {
			continue
		}
		for _, e := range l.lessor.Expired(100) {
			req := &pb.InternalRaftRequest{Header: &pb.RequestHeader{ID: c.nextID()},
				LeaseCheckpoint: &pb.LeaseCheckpointRequest{Checkpoints: []*pb.LeaseCheckpoint{{ID: e.ID, Remaining_TTL: -int64(e.RenewIndex)}}}}
			data, err := proto.Marshal(req)
			if err != nil {
				c.fail(err)
				return
			}
			c.tracef("propose expiry of lease %x on %x", e.ID, l.id)
			_ = l.rn.Propose(data) // a dropped expiry is proposed again later
			c.fail(l.process())
			if !l.up || !l.leader {
				break
			}
		}
	}
	c.sched.after(leaseCheckTick, c.expireLeases)
}

// leaseOp is a lease call of the workload: a grant, a put of a leased key,
// a keep-alive or a revocation.
func (cl *client) leaseOp() (*pb.InternalRaftRequest, string) {
	c := cl.c
	var id int64
	if len(c.leases) > 0 {
		id = c.leases[c.rng.IntN(len(c.leases))]
	}
	switch r := c.rng.IntN(100); {
	case r < 30 || id == 0:
		id := int64(c.nextID())
		return &pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{ID: id, TTL: 1 + c.rng.Int64N(maxLeaseTTL)}},
			fmt.Sprintf("grant(%x)", id)
	case r < 65:
		key := fmt.Sprintf("l%d", c.rng.IntN(numLeasedKeys))
		return &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte(key), Value: []byte(fmt.Sprintf("c%d-%d", cl.id, cl.n)), Lease: id}},
			fmt.Sprintf("put(%s, lease %x)", key, id)
	case r < 85:
		return &pb.InternalRaftRequest{LeaseCheckpoint: &pb.LeaseCheckpointRequest{Checkpoints: []*pb.LeaseCheckpoint{{ID: id, Remaining_TTL: 1}}}},
			fmt.Sprintf("keepalive(%x)", id)
	default:
		return &pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: id}}, fmt.Sprintf("revoke(%x)", id)
	}
}

// leaseDone records what an answered lease call established.
func (c *cluster) leaseDone(req *pb.InternalRaftRequest, o outcome) {
	if o != outcomeOK {
		return
	}
	switch {
	case req.LeaseGrant != nil:
		c.leases = append(c.leases, req.LeaseGrant.GetID())
	case req.LeaseRevoke != nil:
		c.revoked = append(c.revoked, req.LeaseRevoke.GetID())
	}
}

// checkLeases judges leases on the converged members: a revoked lease is
// gone, and no live key is attached to a lease that no longer exists (a
// lease's end deleted all of its keys in the same revision).
func (c *cluster) checkLeases(ms []*member) []string {
	var out []string
	for _, m := range ms {
		for _, id := range c.revoked {
			if m.lessor.Exists(id) {
				out = append(out, fmt.Sprintf("member %x: acknowledged revoke of lease %x, but the lease exists", m.id, id))
			}
		}
		err := m.disk.store.LeasedKeys(func(key []byte, id int64) error {
			if !m.lessor.Exists(id) && len(out) < 10 {
				out = append(out, fmt.Sprintf("member %x: key %s outlives its lease %x", m.id, key, id))
			}
			return nil
		})
		if err != nil {
			out = append(out, fmt.Sprintf("member %x: leased keys: %v", m.id, err))
		}
	}
	return out
}
