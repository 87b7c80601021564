package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/synod-db/synod/lease"
	"github.com/synod-db/synod/server"
)

// waitUntil polls cond until it holds or the deadline passes.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func keyExists(t *testing.T, cli *clientv3.Client, key string) bool {
	t.Helper()
	g, err := cli.Get(ctx(t), key)
	if err != nil {
		t.Fatal(err)
	}
	return len(g.Kvs) == 1
}

func grant(t *testing.T, cli *clientv3.Client, ttl int64) clientv3.LeaseID {
	t.Helper()
	g, err := cli.Grant(ctx(t), ttl)
	if err != nil {
		t.Fatal(err)
	}
	return g.ID
}

// Revoking a lease deletes every attached key in one revision, which a
// watcher receives as one response.
func TestLeaseRevokeDeletesKeysInOneRevision(t *testing.T) {
	c := newCluster(t, 3, nil)
	cli := c.client()
	id := grant(t, cli, 60)
	for i, k := range []string{"r/c", "r/a", "r/b"} {
		if _, err := c.client(i).Put(ctx(t), k, "v", clientv3.WithLease(id)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Put(ctx(t), "r/free", "v"); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx(t))
	defer cancel()
	wch := c.client(1).Watch(wctx, "r/", clientv3.WithPrefix(), clientv3.WithRev(0))
	// The watch is registered once a write made after it is seen.
	if _, err := cli.Put(ctx(t), "r/marker", "m"); err != nil {
		t.Fatal(err)
	}
	for wr := range wch {
		if len(wr.Events) > 0 && string(wr.Events[0].Kv.Key) == "r/marker" {
			break
		}
	}
	rr, err := c.client(2).Revoke(ctx(t), id)
	if err != nil {
		t.Fatal(err)
	}
	wr := <-wch
	var got []string
	for _, ev := range wr.Events {
		if ev.Type != mvccpb.Event_DELETE || ev.Kv.ModRevision != rr.Header.Revision {
			t.Fatalf("event %v, want DELETE at revision %d", ev, rr.Header.Revision)
		}
		got = append(got, string(ev.Kv.Key))
	}
	if want := []string{"r/a", "r/b", "r/c"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("one response with %q, want %q", got, want)
	}
	g, err := cli.Get(ctx(t), "r/", clientv3.WithPrefix())
	if err != nil || len(g.Kvs) != 2 || g.Header.Revision != rr.Header.Revision {
		t.Fatalf("after revoke: %v %v", g, err)
	}
	if _, err := cli.Revoke(ctx(t), id); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Fatalf("second revoke: %v", err)
	}
	for i := range c.members {
		ttl, err := c.client(i).TimeToLive(ctx(t), id)
		if err != nil || ttl.TTL != -1 {
			t.Fatalf("member %d TimeToLive after revoke: %v %v", i, ttl, err)
		}
		// Every member counts what it applied, under etcd's metric names.
		_, body, err := c.httpGet(i, "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		for name, want := range map[string]float64{"etcd_debugging_lease_granted_total": 1,
			"etcd_debugging_lease_revoked_total": 1, "synod_lease_count": 0} {
			if got := metricValue(t, body, name, ""); got != want {
				t.Errorf("member %d %s = %v, want %v", i, name, got, want)
			}
		}
	}
}

// A lease that is not kept alive expires: its keys are deleted.
func TestLeaseExpiryDeletesKeys(t *testing.T) {
	c := newCluster(t, 3, nil)
	cli := c.client()
	id := grant(t, cli, 1)
	if _, err := cli.Put(ctx(t), "exp/k", "v", clientv3.WithLease(id)); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "key of an expired lease deleted", func() bool { return !keyExists(t, cli, "exp/k") })
	ls, err := cli.Leases(ctx(t))
	if err != nil || len(ls.Leases) != 0 {
		t.Fatalf("leases after expiry: %v %v", ls, err)
	}
	if _, err := cli.KeepAliveOnce(ctx(t), id); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Fatalf("keep-alive of an expired lease: %v", err)
	}
}

// clientv3's KeepAlive keeps a lease alive well beyond its TTL; once it
// stops, the lease expires.
func TestLeaseKeepAliveKeepsLeaseAlive(t *testing.T) {
	c := newCluster(t, 3, nil)
	cli := c.client()
	const ttl = 2
	start := time.Now()
	id := grant(t, cli, ttl)
	if _, err := cli.Put(ctx(t), "ka/k", "v", clientv3.WithLease(id)); err != nil {
		t.Fatal(err)
	}
	kctx, stop := context.WithCancel(context.Background())
	defer stop()
	kch, err := c.client(1).KeepAlive(kctx, id)
	if err != nil {
		t.Fatal(err)
	}
	// The passage of time is the behaviour under test: three TTLs.
	renewals := 0
	deadline := time.After(3*ttl*time.Second - time.Since(start))
wait:
	for {
		select {
		case r, ok := <-kch:
			if !ok {
				t.Fatalf("keep-alive channel closed after %d renewals", renewals)
			}
			if r.ID != id || r.TTL != ttl {
				t.Fatalf("keep-alive response %v", r)
			}
			renewals++
		case <-deadline:
			break wait
		}
	}
	if renewals < 3 || !keyExists(t, cli, "ka/k") {
		t.Fatalf("after 3 TTLs and %d renewals the key is gone", renewals)
	}
	stop()
	waitUntil(t, 10*time.Second, "lease expired once keep-alive stopped", func() bool { return !keyExists(t, cli, "ka/k") })
}

// grantID grants a lease with a client-chosen ID (clientv3's Grant always
// lets the server choose) through the raw gRPC client.
func grantID(cli *clientv3.Client, id, ttl int64) (*pb.LeaseGrantResponse, error) {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return pb.NewLeaseClient(cli.ActiveConnection()).LeaseGrant(c, &pb.LeaseGrantRequest{ID: id, TTL: ttl})
}

// TimeToLive (with keys) and Leases on every member; attaching, detaching
// and ignore_lease.
func TestLeaseTimeToLiveKeysAndList(t *testing.T) {
	c := newCluster(t, 3, nil)
	cli := c.client()
	const id = 0x1234
	gr, err := grantID(cli, id, 30)
	if err != nil || gr.ID != id || gr.TTL != 30 || gr.Header.Revision == 0 {
		t.Fatalf("grant: %v %v", gr, err)
	}
	other := grant(t, cli, 40)
	for _, k := range []string{"t/b", "t/a", "t/c"} {
		if _, err := cli.Put(ctx(t), k, "v", clientv3.WithLease(id)); err != nil {
			t.Fatal(err)
		}
	}
	// Overwriting without a lease detaches; with ignore_lease keeps it.
	if _, err := cli.Put(ctx(t), "t/c", "v2"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx(t), "t/a", "v2", clientv3.WithIgnoreLease()); err != nil {
		t.Fatal(err)
	}
	// Moving a key to another lease.
	if _, err := cli.Put(ctx(t), "t/d", "v", clientv3.WithLease(id)); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx(t), "t/d", "v", clientv3.WithLease(other)); err != nil {
		t.Fatal(err)
	}
	for i := range c.members {
		pinned := c.client(i)
		ttl, err := pinned.TimeToLive(ctx(t), id, clientv3.WithAttachedKeys())
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, k := range ttl.Keys {
			keys = append(keys, string(k))
		}
		if ttl.ID != id || ttl.GrantedTTL != 30 || ttl.TTL < 25 || ttl.TTL > 30 || !reflect.DeepEqual(keys, []string{"t/a", "t/b"}) {
			t.Fatalf("member %d TimeToLive: %+v keys %q", i, ttl, keys)
		}
		ls, err := pinned.Leases(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		var ids []clientv3.LeaseID
		for _, l := range ls.Leases {
			ids = append(ids, l.ID)
		}
		if !reflect.DeepEqual(ids, []clientv3.LeaseID{id, other}) && !reflect.DeepEqual(ids, []clientv3.LeaseID{other, id}) {
			t.Fatalf("member %d leases %v", i, ids)
		}
	}
	if _, err := cli.Delete(ctx(t), "t/a"); err != nil {
		t.Fatal(err)
	}
	ttl, err := cli.TimeToLive(ctx(t), other, clientv3.WithAttachedKeys())
	if err != nil || len(ttl.Keys) != 1 || string(ttl.Keys[0]) != "t/d" {
		t.Fatalf("other lease: %v %v", ttl, err)
	}
	if _, err := cli.Revoke(ctx(t), id); err != nil {
		t.Fatal(err)
	}
	g, err := cli.Get(ctx(t), "t/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil || len(g.Kvs) != 2 || string(g.Kvs[0].Key) != "t/c" || string(g.Kvs[1].Key) != "t/d" {
		t.Fatalf("after revoke only t/c and t/d remain: %v %v", g, err)
	}
}

func TestLeaseErrors(t *testing.T) {
	c := newCluster(t, 3, nil)
	cli := c.client()
	if _, err := grantID(cli, 77, 10); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		call func() error
		want error
	}{
		{"duplicate ID", func() error { _, err := grantID(cli, 77, 10); return err }, rpctypes.ErrGRPCLeaseExist},
		{"TTL too large", func() error { _, err := cli.Grant(ctx(t), lease.MaxTTL+1); return err }, rpctypes.ErrLeaseTTLTooLarge},
		{"revoke unknown", func() error { _, err := cli.Revoke(ctx(t), 999); return err }, rpctypes.ErrLeaseNotFound},
		{"keep-alive unknown", func() error { _, err := cli.KeepAliveOnce(ctx(t), 999); return err }, rpctypes.ErrLeaseNotFound},
		{"put with unknown lease", func() error { _, err := cli.Put(ctx(t), "k", "v", clientv3.WithLease(999)); return err }, rpctypes.ErrLeaseNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if rpctypes.ErrorDesc(err) != rpctypes.ErrorDesc(tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	// A TTL below the minimum is raised to it (1 s with this cluster's
	// 10 ms heartbeat and 100 ms election timeout).
	g, err := cli.Grant(ctx(t), 0)
	if err != nil || g.TTL != 1 || g.ID <= 0 {
		t.Fatalf("grant TTL 0: %v %v", g, err)
	}
	// An unknown lease's TimeToLive is TTL -1, not an error (as etcd).
	ttl, err := cli.TimeToLive(ctx(t), 999)
	if err != nil || ttl.TTL != -1 || ttl.GrantedTTL != 0 {
		t.Fatalf("TimeToLive unknown: %v %v", ttl, err)
	}
}

// synod's guarantee (docs/leases.md): a leader change neither resets a lease
// to its full TTL (etcd's behaviour) nor expires it early.
func TestLeaseTTLAcrossLeaderChange(t *testing.T) {
	const tolerance = 1500 * time.Millisecond
	c := newCluster(t, 3, nil)
	lead := c.waitLeader()
	cli := c.client()
	start := time.Now()
	id := grant(t, cli, 10)
	if _, err := cli.Put(ctx(t), "lc/k", "v", clientv3.WithLease(id)); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	next := (lead + 1) % 3
	wch := c.client(next).Watch(wctx, "lc/k", clientv3.WithRev(1))
	// The passage of time is the behaviour under test.
	time.Sleep(5*time.Second - time.Since(start))
	if err := c.members[lead].TransferLeadership(ctx(t), c.members[next].ID()); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "leadership moved", func() bool { return c.members[next].Leader() == c.members[next].ID() })
	if got := c.waitLeader(); got != next {
		t.Fatalf("leader %d, want %d", got, next)
	}
	for i := range c.members {
		ttl, err := c.client(i).TimeToLive(ctx(t), id)
		elapsed := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		left := 10*time.Second - elapsed
		t.Logf("member %d at %v: TimeToLive %ds", i, elapsed.Round(time.Millisecond), ttl.TTL)
		if got := time.Duration(ttl.TTL) * time.Second; got > left+tolerance || got < left-tolerance-time.Second {
			t.Fatalf("member %d after the leader change at %v: remaining %v, want about %v", i, elapsed.Round(time.Millisecond), got, left)
		}
	}
	// The put's event, then the expiry's delete.
	var deletedAt time.Duration
	for deletedAt == 0 {
		select {
		case wr := <-wch:
			if err := wr.Err(); err != nil {
				t.Fatal(err)
			}
			for _, ev := range wr.Events {
				if ev.Type == mvccpb.Event_DELETE {
					deletedAt = time.Since(start)
				}
			}
		case <-time.After(20 * time.Second):
			t.Fatal("key not deleted 25 s after the grant")
		}
	}
	t.Logf("deleted %v after the grant", deletedAt.Round(time.Millisecond))
	if deletedAt < 10*time.Second-tolerance || deletedAt > 10*time.Second+tolerance {
		t.Fatalf("key deleted %v after the grant, want 10s ± %v", deletedAt.Round(time.Millisecond), tolerance)
	}
}

// Leases and their attachments survive a member restart, a whole-cluster
// restart (full TTL again) and a snapshot restore.
func TestLeasesSurviveRestartAndSnapshot(t *testing.T) {
	c := newCluster(t, 3, func(cfg *server.Config) { cfg.SnapshotCount = 20 })
	lead := c.waitLeader()
	lag := (lead + 1) % 3
	cli := c.client(lead)
	id := grant(t, cli, 600)
	if _, err := cli.Put(ctx(t), "sr/a", "v", clientv3.WithLease(id)); err != nil {
		t.Fatal(err)
	}
	// The lagging member misses a grant, attachments and a revoke, then
	// catches up through a snapshot.
	c.stop(lag)
	id2 := grant(t, cli, 600)
	gone := grant(t, cli, 600)
	for i := 0; i < 60; i++ {
		l := id2
		if i%2 == 0 {
			l = gone
		}
		if _, err := cli.Put(ctx(t), fmt.Sprintf("sr/k%02d", i), "v", clientv3.WithLease(l)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Revoke(ctx(t), gone); err != nil {
		t.Fatal(err)
	}
	c.start(lag)
	waitUntil(t, 15*time.Second, "lagging member caught up by snapshot", func() bool {
		return c.members[lag].RaftStats().SnapshotsInstalled > 0
	})
	checkLease := func(member int, lid clientv3.LeaseID, wantKeys int, minTTL int64) {
		t.Helper()
		ttl, err := c.client(member).TimeToLive(ctx(t), lid, clientv3.WithAttachedKeys())
		if err != nil || len(ttl.Keys) != wantKeys || ttl.TTL < minTTL {
			t.Fatalf("member %d lease %x: %+v %v, want %d keys and TTL >= %d", member, lid, ttl, err, wantKeys, minTTL)
		}
	}
	checkLease(lag, id, 1, 590)
	checkLease(lag, id2, 30, 590)
	if ttl, err := c.client(lag).TimeToLive(ctx(t), gone); err != nil || ttl.TTL != -1 {
		t.Fatalf("revoked lease on the restored member: %v %v", ttl, err)
	}
	// Whole-cluster restart: leases and attachments are back.
	c.stopAll()
	for i := range c.members {
		c.start(i)
	}
	c.waitLeader()
	for i := range c.members {
		checkLease(i, id2, 30, 590)
	}
	// Revoking through the restored member deletes the keys everywhere.
	if _, err := c.client(lag).Revoke(ctx(t), id2); err != nil {
		t.Fatal(err)
	}
	g, err := c.client().Get(ctx(t), "sr/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || g.Count != 1 {
		t.Fatalf("after revoke: %v %v", g, err)
	}
}

// The keep-alive/expiry race: an expiry the leader proposed before a renewal
// was applied (it names the renewal index it saw) does not revoke the
// renewed lease; an expiry naming the current renewal does, keys and all.
func TestLeaseStaleExpiryDoesNotRevokeRenewedLease(t *testing.T) {
	c := newCluster(t, 3, nil)
	cli := c.client()
	id := grant(t, cli, 600)
	if _, err := cli.Put(ctx(t), "race/k", "v", clientv3.WithLease(id)); err != nil {
		t.Fatal(err)
	}
	m := c.members[0]
	renewIndex := func() uint64 {
		if err := m.ReadIndex(ctx(t)); err != nil {
			t.Fatal(err)
		}
		st, ok := m.Lessor().Lookup(int64(id), false)
		if !ok {
			t.Fatal("lease gone")
		}
		return st.RenewIndex
	}
	expire := func(index uint64) {
		req := &pb.InternalRaftRequest{LeaseCheckpoint: &pb.LeaseCheckpointRequest{
			Checkpoints: []*pb.LeaseCheckpoint{{ID: int64(id), Remaining_TTL: -int64(index)}},
		}}
		if _, err := m.Propose(ctx(t), req); err != nil {
			t.Fatal(err)
		}
	}
	granted := renewIndex()
	if ka, err := cli.KeepAliveOnce(ctx(t), id); err != nil || ka.TTL != 600 {
		t.Fatalf("keep-alive: %v %v", ka, err)
	}
	renewed := renewIndex()
	if renewed <= granted {
		t.Fatalf("renewal index %d, grant index %d", renewed, granted)
	}
	expire(granted) // decided before the renewal was applied
	for i := range c.members {
		ttl, err := c.client(i).TimeToLive(ctx(t), id)
		if err != nil || ttl.TTL < 590 || !keyExists(t, c.client(i), "race/k") {
			t.Fatalf("member %d: a stale expiry revoked a renewed lease: %v %v", i, ttl, err)
		}
	}
	expire(renewed)
	for i := range c.members {
		if ttl, err := c.client(i).TimeToLive(ctx(t), id); err != nil || ttl.TTL != -1 || keyExists(t, c.client(i), "race/k") {
			t.Fatalf("member %d: the current expiry did not revoke: %v %v", i, ttl, err)
		}
	}
}

// One raw keep-alive stream with many requests in flight: every request is
// answered (granted TTL, or 0 for an unknown lease), including those still
// in flight when the client closes its side.
func TestLeaseKeepAliveStreamAnswersEveryRequest(t *testing.T) {
	c := newCluster(t, 3, nil)
	cli := c.client(1)
	a, b := grant(t, cli, 30), grant(t, cli, 60)
	stream, err := pb.NewLeaseClient(cli.ActiveConnection()).LeaseKeepAlive(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	want := map[int64]int64{int64(a): 30, int64(b): 60, 4242: 0}
	ids := []int64{int64(a), int64(b), 4242}
	for i := 0; i < n; i++ {
		if err := stream.Send(&pb.LeaseKeepAliveRequest{ID: ids[i%3]}); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	got := 0
	for {
		r, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("after %d answers: %v", got, err)
		}
		if r.TTL != want[r.ID] || r.Header.GetMemberId() != c.members[1].ID() || r.Header.Revision == 0 {
			t.Fatalf("answer %v", r)
		}
		got++
	}
	if got != n {
		t.Fatalf("%d answers to %d requests", got, n)
	}
}

// A keep-alive stream opened WithRequireLeader (as clientv3's KeepAlive
// opens it) ends with "etcdserver: no leader" once its member has been
// without a leader for the grace period, even while no request arrives, and
// is refused on a member without a leader.
func TestLeaseKeepAliveRequireLeaderEndsWithoutLeader(t *testing.T) {
	c := newCluster(t, 3, nil)
	lead := c.waitLeader()
	w := (lead + 1) % 3
	cli := c.client(w)
	id := grant(t, cli, 60)
	sctx, cancel := context.WithCancel(clientv3.WithRequireLeader(context.Background()))
	defer cancel()
	lc := pb.NewLeaseClient(cli.ActiveConnection())
	stream, err := lc.LeaseKeepAlive(sctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&pb.LeaseKeepAliveRequest{ID: int64(id)}); err != nil {
		t.Fatal(err)
	}
	if r, err := stream.Recv(); err != nil || r.TTL != 60 {
		t.Fatalf("first answer: %v %v", r, err)
	}
	for i := range c.members {
		if i != w {
			c.stop(i)
		}
	}
	ended := make(chan error, 1)
	go func() {
		_, err := stream.Recv()
		ended <- err
	}()
	select {
	case err := <-ended:
		if rpctypes.ErrorDesc(err) != rpctypes.ErrorDesc(rpctypes.ErrGRPCNoLeader) {
			t.Fatalf("stream ended with %v, want %v", err, rpctypes.ErrGRPCNoLeader)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("keep-alive stream on a leaderless member was not ended")
	}
	waitUntil(t, 10*time.Second, "member knows it has no leader", func() bool { return c.members[w].Leader() == 0 })
	s2, err := lc.LeaseKeepAlive(sctx)
	if err == nil {
		_, err = s2.Recv()
	}
	if rpctypes.ErrorDesc(err) != rpctypes.ErrorDesc(rpctypes.ErrGRPCNoLeader) {
		t.Fatalf("new stream on a leaderless member: %v, want %v", err, rpctypes.ErrGRPCNoLeader)
	}
}

// Keep-alives sent concurrently on several streams of every member (so that
// followers' and the leader's renewals are coalesced into shared entries)
// are each answered: the granted TTL for a live lease, TTL 0 for a revoked
// one in the same entries; and every member applies the renewals.
func TestLeaseCoalescedKeepAlivesAnswerEachLease(t *testing.T) {
	c := newCluster(t, 3, nil)
	const leases, streamsPerMember = 40, 3
	ids := make([]int64, leases)
	for i := range ids {
		ids[i] = int64(grant(t, c.client(0), 30))
	}
	if _, err := c.client(0).Revoke(ctx(t), clientv3.LeaseID(ids[0])); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 3*streamsPerMember)
	for m := range 3 {
		for range streamsPerMember {
			go func() { errc <- keepAliveAll(t, c.client(m), ids) }()
		}
	}
	for range 3 * streamsPerMember {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	for m, mem := range c.members {
		// Every member applied a renewal of each live lease (the grants
		// count as granted, not renewed).
		waitUntil(t, 10*time.Second, fmt.Sprintf("member %d renewed every live lease", m), func() bool {
			return mem.Lessor().Stats().Renewed >= leases-1
		})
	}
}

// keepAliveAll sends one keep-alive per id on one stream and checks every
// answer: TTL 30, or 0 for ids[0] (revoked).
func keepAliveAll(t *testing.T, cli *clientv3.Client, ids []int64) error {
	stream, err := pb.NewLeaseClient(cli.ActiveConnection()).LeaseKeepAlive(ctx(t))
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := stream.Send(&pb.LeaseKeepAliveRequest{ID: id}); err != nil {
			return err
		}
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	got := map[int64]int64{}
	for {
		r, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("after %d answers: %w", len(got), err)
		}
		got[r.ID] = r.TTL
	}
	for i, id := range ids {
		want := int64(30)
		if i == 0 {
			want = 0
		}
		if ttl, ok := got[id]; !ok || ttl != want {
			return fmt.Errorf("lease %x: answered %v (TTL %d), want TTL %d", id, ok, ttl, want)
		}
	}
	return nil
}
