package simulation

import (
	"fmt"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/synod-db/synod/lease"
)

// Leases, as the server runs them (server/lease.go): grants, keep-alives
// and revocations are raft entries applied by the production state machine
// through its lease.Lessor (on the simulated clock); the leader proposes
// expiries, conditional on the renewal index it saw. Leased keys ("l0".."l3") are kept
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

// expireLeases is the expiry duty of every running member that believes
// it leads (as the server runs it: a stale leader just resumed from a pause
// runs it too, until it hears of the new term): it proposes the expiry the
// server proposes (lease.ExpiryRequest) for every lease past its expiry on
// that member's clock, then schedules itself again.
func (c *cluster) expireLeases() {
	for _, l := range c.live() {
		if !l.core.IsLeader() || l.paused {
			continue
		}
		for _, e := range l.sm.Lessor().Expired(100) {
			c.tracef("propose expiry of lease %x on %x", e.ID, l.id)
			if _, err := l.core.ProposeAsync(lease.ExpiryRequest(e)); err != nil {
				c.fail(err)
				return
			}
			c.fail(l.process()) // a dropped expiry is proposed again later
			if !l.up || !l.core.IsLeader() {
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
// gone, no live key is attached to a lease that no longer exists (a
// lease's end deleted all of its keys in the same revision), and the lease
// index a restart reads lists exactly the leased keys.
func (c *cluster) checkLeases(ms []*member) []string {
	var out []string
	for _, m := range ms {
		for _, id := range c.revoked {
			if m.sm.Lessor().Exists(id) {
				out = append(out, fmt.Sprintf("member %x: acknowledged revoke of lease %x, but the lease exists", m.id, id))
			}
		}
		if err := m.sm.KV().VerifyLeaseIndex(); err != nil {
			out = append(out, fmt.Sprintf("member %x: %v", m.id, err))
		}
		err := m.sm.KV().ScanLeasedKeys(func(key []byte, id int64) error {
			if !m.sm.Lessor().Exists(id) && len(out) < 10 {
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
