package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/synod-db/synod/server"
)

// forwardSetup grants n leases of 30 s (and revokes the first, so that
// every round of keep-alives has a missing lease in it), then waits until
// every member reports them below their granted TTL: a renewal then shows
// as the TTL coming back.
func forwardSetup(t *testing.T, c *cluster, n int) []int64 {
	t.Helper()
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = int64(grant(t, c.client(0), 30))
	}
	if _, err := c.client(0).Revoke(ctx(t), clientv3.LeaseID(ids[0])); err != nil {
		t.Fatal(err)
	}
	for i := range c.members {
		waitUntil(t, 10*time.Second, fmt.Sprintf("member %d's TTL below 29 s", i), func() bool {
			return ttlOn(t, c, i, ids[n-1]) <= 28
		})
	}
	return ids
}

// ttlOn is lease id's remaining TTL as member i reports it.
func ttlOn(t *testing.T, c *cluster, i int, id int64) int64 {
	t.Helper()
	r, err := c.client(i).TimeToLive(ctx(t), clientv3.LeaseID(id))
	if err != nil {
		t.Fatal(err)
	}
	return r.TTL
}

// checkRenewedEverywhere checks that every member applied the renewal of
// every live lease (its TTL is back above 28 s) and that the revoked one is
// gone.
func checkRenewedEverywhere(t *testing.T, c *cluster, ids []int64) {
	t.Helper()
	for i := range c.members {
		for _, id := range ids[1:] {
			if ttl := ttlOn(t, c, i, id); ttl <= 28 {
				t.Fatalf("member %d: lease %x has %d s left after its keep-alive, want it renewed to 30", i, id, ttl)
			}
		}
		if ttl := ttlOn(t, c, i, ids[0]); ttl != -1 {
			t.Fatalf("member %d: revoked lease %x reports TTL %d", i, ids[0], ttl)
		}
	}
}

// followers are the indexes of the members that do not lead.
func followers(c *cluster, lead int) []int {
	var out []int
	for i := range c.members {
		if i != lead {
			out = append(out, i)
		}
	}
	return out
}

// Keep-alives sent to a follower are renewed in the leader's entries: the
// follower proposes no renewal entry of its own, hands its batches to the
// leader, and every member applies the renewals (TimeToLive on each), with
// the revoked lease among them answered TTL 0.
func TestLeaseKeepAliveOnFollowerRenewedByLeader(t *testing.T) {
	c := newCluster(t, 3, nil)
	lead := c.waitLeader()
	ids := forwardSetup(t, c, 20)
	f := followers(c, lead)[0]
	before, leaderBefore := c.members[f].LeaseRenewals(), c.members[lead].LeaseRenewals()
	for range 3 {
		if err := keepAliveAll(t, c.client(f), ids); err != nil {
			t.Fatal(err)
		}
	}
	checkRenewedEverywhere(t, c, ids)
	after, leaderAfter := c.members[f].LeaseRenewals(), c.members[lead].LeaseRenewals()
	if after.Proposed != before.Proposed || after.HandedOver == before.HandedOver {
		t.Fatalf("follower's renewer: %+v before, %+v after; want batches handed over and no entry proposed", before, after)
	}
	if leaderAfter.Served-leaderBefore.Served != after.HandedOver-before.HandedOver {
		t.Fatalf("leader served %d batches, the follower handed over %d", leaderAfter.Served-leaderBefore.Served, after.HandedOver-before.HandedOver)
	}
}

// A leader that refuses renewals (a release before they were handed over,
// in a rolling upgrade) gets each follower's batch proposed by the
// follower, and is asked once, not at every round.
func TestLeaseKeepAliveLeaderRefusesRenewals(t *testing.T) {
	c := newCluster(t, 3, func(cfg *server.Config) { cfg.RefusePeerRenewals = true })
	lead := c.waitLeader()
	ids := forwardSetup(t, c, 20)
	f := followers(c, lead)[0]
	before := c.members[f].LeaseRenewals()
	const rounds = 5
	for range rounds {
		if err := keepAliveAll(t, c.client(f), ids); err != nil {
			t.Fatal(err)
		}
	}
	checkRenewedEverywhere(t, c, ids)
	after := c.members[f].LeaseRenewals()
	if after.HandedOver-before.HandedOver != 1 || after.Proposed-before.Proposed < rounds {
		t.Fatalf("follower's renewer: %+v before, %+v after; want one batch offered, then every round proposed locally", before, after)
	}
	if s := c.members[lead].LeaseRenewals(); s.Served != 0 {
		t.Fatalf("a leader that refuses renewals served %d batches", s.Served)
	}
}

// Keep-alives sent to a follower without pause while the leadership moves
// twice (so that batches are in flight to a leader that steps down): no
// keep-alive is answered wrongly, and every lease ends up renewed on every
// member. A round may fail as etcd's would without a leader (Unavailable:
// clientv3 retries those); no other error is allowed.
func TestLeaseKeepAliveForwardedAcrossLeaderChange(t *testing.T) {
	c := newCluster(t, 3, nil)
	lead := c.waitLeader()
	ids := forwardSetup(t, c, 20)
	f := followers(c, lead)[0]
	other := followers(c, lead)[1]
	stop := make(chan struct{})
	var rounds, unavailable atomic.Int64
	errc := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				errc <- nil
				return
			default:
			}
			err := keepAliveAll(t, c.client(f), ids)
			switch {
			case err == nil:
				rounds.Add(1)
			case status.Code(errors.Unwrap(err)) == codes.Unavailable || status.Code(err) == codes.Unavailable:
				unavailable.Add(1)
				t.Logf("round ended: %v", err)
			default:
				errc <- err
				return
			}
		}
	}()
	waitUntil(t, 10*time.Second, "keep-alive rounds", func() bool { return rounds.Load() >= 3 })
	for _, to := range []int{other, lead} {
		from := c.waitLeader()
		n := rounds.Load()
		if err := c.members[from].TransferLeadership(ctx(t), c.members[to].ID()); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, 10*time.Second, "leadership moved", func() bool { return c.waitLeader() == to })
		waitUntil(t, 10*time.Second, "keep-alive rounds after the change", func() bool { return rounds.Load() >= n+3 })
	}
	close(stop)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d rounds answered, %d ended Unavailable", rounds.Load(), unavailable.Load())
	checkRenewedEverywhere(t, c, ids)
	if s := c.members[f].LeaseRenewals(); s.HandedOver == 0 {
		t.Fatalf("follower's renewer: %+v; want batches handed over", s)
	}
}

var _ = io.EOF
var _ = pb.LeaseKeepAliveRequest{}
var _ = context.Background
