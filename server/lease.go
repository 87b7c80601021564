package server

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/synod-db/synod/lease"
	"github.com/synod-db/synod/raftnode"
)

// Lease expiry, as the leader drives it.
const (
	// leaseCheckInterval is how often the leader looks for expired leases
	// (etcd's lessor loop runs every 500 ms).
	leaseCheckInterval = 500 * time.Millisecond
	// leaseRevokeRate bounds the expiries the leader proposes per second
	// (etcd's defaultLeaseRevokeRate).
	leaseRevokeRate = 1000
	// leaseExpiryInFlight bounds the expiry proposals waiting at once.
	leaseExpiryInFlight = 64
)

// Lessor is the member's lease state.
func (m *Member) Lessor() *lease.Lessor { return m.lessor }

// NewLeaseID returns a fresh positive lease ID, generated as etcd does: the
// member's request ID generator masked to a positive int64.
func (m *Member) NewLeaseID() int64 {
	for {
		if id := int64(m.node.NewID() & (1<<63 - 1)); id != 0 {
			return id
		}
	}
}

// MinLeaseTTL is the smallest TTL this member grants (etcd's minTTL: 1.5
// election timeouts, rounded up to a second).
func (m *Member) MinLeaseTTL() int64 {
	return lease.MinTTL(m.cfg.HeartbeatInterval, int(m.cfg.ElectionTimeout/m.cfg.HeartbeatInterval))
}

// registerLeaseMetrics publishes the lessor's counters under etcd's names
// (counted on every member as it applies them; etcd counts renewals on the
// leader only) and the number of leases.
func (m *Member) registerLeaseMetrics() {
	l := m.lessor
	m.metrics.CounterFunc("etcd_debugging_lease_granted_total", "The total number of granted leases.",
		func() float64 { return float64(l.Stats().Granted) })
	m.metrics.CounterFunc("etcd_debugging_lease_revoked_total", "The total number of revoked leases.",
		func() float64 { return float64(l.Stats().Revoked) })
	m.metrics.CounterFunc("etcd_debugging_lease_renewed_total", "The number of renewed leases seen by this member.",
		func() float64 { return float64(l.Stats().Renewed) })
	m.metrics.GaugeFunc("synod_lease_count", "The number of leases.", func() float64 { return float64(l.Len()) })
}

// loadLeases (re)builds the lessor from the lease records and the keyspace:
// at open, and after a snapshot restore.
func (m *Member) loadLeases() error {
	recs, err := lease.ReadRecords(m.db)
	if err != nil {
		return fmt.Errorf("server: read leases: %w", err)
	}
	if err := m.lessor.Load(recs, m.store.LeasedKeys); err != nil {
		return fmt.Errorf("server: attach leased keys: %w", err)
	}
	return nil
}

// applyLease applies a LeaseGrant, LeaseRevoke or LeaseCheckpoint entry;
// ok is false for any other request.
func (a applier) applyLease(index, term uint64, req *etcdserverpb.InternalRaftRequest) (res raftnode.Result, ok bool, err error) {
	l := a.m.lessor
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
		return raftnode.Result{}, false, nil
	}
	if err := a.commitLease(index, term, c); err != nil {
		return raftnode.Result{}, true, err
	}
	if reqErr != nil {
		return raftnode.Result{Err: reqErr}, true, nil
	}
	hdr := &etcdserverpb.ResponseHeader{Revision: a.m.store.Rev()}
	switch {
	case req.LeaseGrant != nil:
		return raftnode.Result{Resp: &etcdserverpb.LeaseGrantResponse{Header: hdr, ID: c.Put[0].ID, TTL: c.Put[0].TTL}}, true, nil
	case req.LeaseRevoke != nil:
		return raftnode.Result{Resp: &etcdserverpb.LeaseRevokeResponse{Header: hdr}}, true, nil
	}
	return raftnode.Result{Resp: &etcdserverpb.LeaseCheckpointResponse{Header: hdr}}, true, nil
}

// commitLease writes c and the applied index in one batch. Removing leases
// deletes their keys as one Txn of single-key deletes: one revision, whose
// events watchers receive together.
func (a applier) commitLease(index, term uint64, c lease.Change) error {
	if len(c.Remove) == 0 {
		if err := a.m.store.ApplyOther(index, term, c.Write); err != nil {
			return err
		}
		a.m.lessor.Commit(c)
		return nil
	}
	txn := &etcdserverpb.TxnRequest{Success: make([]*etcdserverpb.RequestOp, len(c.DeleteKeys))}
	for i, k := range c.DeleteKeys {
		txn.Success[i] = &etcdserverpb.RequestOp{Request: &etcdserverpb.RequestOp_RequestDeleteRange{
			RequestDeleteRange: &etcdserverpb.DeleteRangeRequest{Key: k},
		}}
	}
	res, err := a.m.store.ApplyWith(index, term, &etcdserverpb.InternalRaftRequest{Txn: txn}, c.Write)
	if err != nil {
		return err
	}
	if res.Err != nil { // a txn of plain deletes has no request error
		return fmt.Errorf("server: revoke leases %v: %w", c.Remove, res.Err)
	}
	a.m.lessor.Commit(c)
	a.m.lessor.ApplyEvents(res.Events)
	a.m.notifyWatchers(res.Events)
	return nil
}

// expireLeases is the leader's expiry duty, run every leaseCheckInterval:
// if this member leads, it proposes an expiry for each lease past its local
// expiry, at most leaseRevokeRate per second and leaseExpiryInFlight at a
// time (sem). Followers never expire leases.
func (m *Member) expireLeases(sem chan struct{}) {
	if !m.node.IsLeader() {
		return
	}
	perRound := int(leaseRevokeRate * leaseCheckInterval / time.Second)
	for _, e := range m.lessor.Expired(perRound) {
		select {
		case sem <- struct{}{}:
		case <-m.stopped:
			return
		}
		m.bg.Add(1)
		go func(e lease.Expiry) {
			defer m.bg.Done()
			defer func() { <-sem }()
			m.proposeExpiry(e)
		}(e)
	}
}

// proposeExpiry proposes the expiry of one lease, conditional on its renewal
// index (lease.Lessor.PlanCheckpoints). A failed proposal is retried when
// Expired reports the lease again.
func (m *Member) proposeExpiry(e lease.Expiry) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := &etcdserverpb.InternalRaftRequest{LeaseCheckpoint: &etcdserverpb.LeaseCheckpointRequest{
		Checkpoints: []*etcdserverpb.LeaseCheckpoint{{ID: e.ID, Remaining_TTL: -int64(e.RenewIndex)}},
	}}
	if _, err := m.node.Propose(ctx, req); err != nil {
		m.log.Debug("lease expiry not applied; retried later", "lease", fmt.Sprintf("%016x", e.ID), "err", err)
	}
}
