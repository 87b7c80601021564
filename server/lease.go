package server

import (
	"context"
	"fmt"
	"time"

	"github.com/synod-db/synod/lease"
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
func (m *Member) Lessor() *lease.Lessor { return m.sm.Lessor() }

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
	l := m.sm.Lessor()
	m.metrics.CounterFunc("etcd_debugging_lease_granted_total", "The total number of granted leases.",
		func() float64 { return float64(l.Stats().Granted) })
	m.metrics.CounterFunc("etcd_debugging_lease_revoked_total", "The total number of revoked leases.",
		func() float64 { return float64(l.Stats().Revoked) })
	m.metrics.CounterFunc("etcd_debugging_lease_renewed_total", "The number of renewed leases seen by this member.",
		func() float64 { return float64(l.Stats().Renewed) })
	m.metrics.GaugeFunc("synod_lease_count", "The number of leases.", func() float64 { return float64(l.Len()) })
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
	for _, e := range m.sm.Lessor().Expired(perRound) {
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

// proposeExpiry proposes the expiry of one lease (lease.ExpiryRequest). A failed proposal is retried when
// Expired reports the lease again.
func (m *Member) proposeExpiry(e lease.Expiry) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := m.node.Propose(ctx, lease.ExpiryRequest(e)); err != nil {
		m.log.Debug("lease expiry not applied; retried later", "lease", fmt.Sprintf("%016x", e.ID), "err", err)
	}
}
