package integration

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"
	"google.golang.org/grpc/status"
)

// criticalSection increments the counter key with a non-atomic
// read-modify-write and records how many holders overlap. Only mutual
// exclusion keeps the counter exact.
func criticalSection(t *testing.T, cli *clientv3.Client, holders, maxHolders *atomic.Int32) {
	t.Helper()
	if n := holders.Add(1); n > maxHolders.Load() {
		maxHolders.Store(n)
	}
	defer holders.Add(-1)
	gr, err := cli.Get(ctx(t), "lock-test/counter")
	if err != nil {
		t.Error(err)
		return
	}
	n := 0
	if len(gr.Kvs) == 1 {
		n, _ = strconv.Atoi(string(gr.Kvs[0].Value))
	}
	if _, err := cli.Put(ctx(t), "lock-test/counter", strconv.Itoa(n+1)); err != nil {
		t.Error(err)
	}
}

// Ten contenders, half through clientv3/concurrency.Mutex and half through
// the server-side Lock service, on the same lock name: the two recipes
// interoperate and never overlap, shown by an exact shared counter.
func TestMutexTenContenders(t *testing.T) {
	c := newCluster(t, 3, nil)
	const contenders, rounds = 10, 3
	var holders, maxHolders atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < contenders; i++ {
		cli := c.client(i % 3)
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
			if err != nil {
				t.Error(err)
				return
			}
			defer s.Close()
			for r := 0; r < rounds; r++ {
				if i%2 == 0 {
					m := concurrency.NewMutex(s, "lock-test/mu")
					if err := m.Lock(ctx(t)); err != nil {
						t.Error(err)
						return
					}
					criticalSection(t, cli, &holders, &maxHolders)
					if err := m.Unlock(ctx(t)); err != nil {
						t.Error(err)
					}
					continue
				}
				lc := v3lockpb.NewLockClient(cli.ActiveConnection())
				resp, err := lc.Lock(ctx(t), &v3lockpb.LockRequest{Name: []byte("lock-test/mu"), Lease: int64(s.Lease())})
				if err != nil {
					t.Error(err)
					return
				}
				criticalSection(t, cli, &holders, &maxHolders)
				if _, err := lc.Unlock(ctx(t), &v3lockpb.UnlockRequest{Key: resp.Key}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if maxHolders.Load() != 1 {
		t.Fatalf("%d holders overlapped", maxHolders.Load())
	}
	gr, err := c.client().Get(ctx(t), "lock-test/counter")
	if err != nil || len(gr.Kvs) != 1 || string(gr.Kvs[0].Value) != strconv.Itoa(contenders*rounds) {
		t.Fatalf("counter = %v (err %v), want %d", gr, err, contenders*rounds)
	}
}

// fencedPut writes key only while the lock key still has the create revision
// (the fencing token) the holder was granted.
func fencedPut(cli *clientv3.Client, lockKey string, token int64, key, val string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(lockKey), "=", token)).
		Then(clientv3.OpPut(key, val)).Commit()
	if err != nil {
		return false, err
	}
	return r.Succeeded, nil
}

// A holder whose lease is gone (here: revoked, as an expiry would) loses the
// lock to the next waiter, and its fenced writes are refused while the new
// holder's succeed.
func TestLockFencingToken(t *testing.T) {
	c := newCluster(t, 3, nil)
	cli := c.client()
	lc := v3lockpb.NewLockClient(cli.ActiveConnection())
	la, a := grantAndLock(t, cli, lc, "fence")
	tokenA := lockToken(t, cli, string(a.Key))
	lb, err := cli.Grant(ctx(t), 30)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *v3lockpb.LockResponse, 1)
	go func() {
		b, err := lc.Lock(ctx(t), &v3lockpb.LockRequest{Name: []byte("fence"), Lease: int64(lb.ID)})
		if err != nil {
			t.Error(err)
		}
		got <- b
	}()
	if ok, err := fencedPut(cli, string(a.Key), tokenA, "fence-data", "a"); !ok || err != nil {
		t.Fatalf("holder A's fenced write refused (err %v)", err)
	}
	if _, err := cli.Revoke(ctx(t), la); err != nil {
		t.Fatal(err)
	}
	b := <-got
	if b == nil {
		t.FailNow()
	}
	tokenB := lockToken(t, cli, string(b.Key))
	if tokenB <= tokenA {
		t.Fatalf("token B %d not above token A %d", tokenB, tokenA)
	}
	if ok, err := fencedPut(cli, string(a.Key), tokenA, "fence-data", "stale"); ok || err != nil {
		t.Fatalf("stale holder A's fenced write: succeeded=%v err=%v, want refused", ok, err)
	}
	if ok, err := fencedPut(cli, string(b.Key), tokenB, "fence-data", "b"); !ok || err != nil {
		t.Fatalf("holder B's fenced write refused (err %v)", err)
	}
}

// grantAndLock grants a 30 s lease and takes the lock name with it.
func grantAndLock(t *testing.T, cli *clientv3.Client, lc v3lockpb.LockClient, name string) (clientv3.LeaseID, *v3lockpb.LockResponse) {
	t.Helper()
	l, err := cli.Grant(ctx(t), 30)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := lc.Lock(ctx(t), &v3lockpb.LockRequest{Name: []byte(name), Lease: int64(l.ID)})
	if err != nil {
		t.Fatal(err)
	}
	return l.ID, resp
}

// lockToken returns the create revision of the lock key: its fencing token.
func lockToken(t *testing.T, cli *clientv3.Client, key string) int64 {
	t.Helper()
	gr, err := cli.Get(ctx(t), key)
	if err != nil || len(gr.Kvs) != 1 {
		t.Fatalf("lock key %q: %v (err %v)", key, gr, err)
	}
	return gr.Kvs[0].CreateRevision
}

// etcd#11456: a waiter whose lease expires while it queues must not be
// granted the lock when its turn comes.
func TestLockNotGrantedAfterLeaseExpiredWhileWaiting(t *testing.T) {
	c := newCluster(t, 3, nil)
	cli := c.client()
	lc := v3lockpb.NewLockClient(cli.ActiveConnection())
	_, a := grantAndLock(t, cli, lc, "expire")
	lb, err := cli.Grant(ctx(t), 1) // the minimum TTL; never kept alive
	if err != nil {
		t.Fatal(err)
	}
	res := make(chan error, 1)
	go func() {
		_, err := lc.Lock(context.Background(), &v3lockpb.LockRequest{Name: []byte("expire"), Lease: int64(lb.ID)})
		res <- err
	}()
	// Wait until B's lease has expired (its queued key went with it).
	deadline := time.Now().Add(15 * time.Second)
	for {
		ttl, err := cli.TimeToLive(ctx(t), lb.ID)
		if err == nil && ttl.TTL == -1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lease B did not expire: %v %v", ttl, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := lc.Unlock(ctx(t), &v3lockpb.UnlockRequest{Key: a.Key}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-res:
		if err == nil {
			t.Fatal("lock granted to a waiter whose lease had expired")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("waiter neither granted nor refused")
	}
}

// Server-side Campaign/Proclaim/Resign/Leader/Observe interoperate with
// clientv3/concurrency.Election on the same election name.
func TestElectionObserveAndResign(t *testing.T) {
	c := newCluster(t, 3, nil)
	cli := c.client()
	ec := v3electionpb.NewElectionClient(cli.ActiveConnection())
	if _, err := ec.Leader(ctx(t), &v3electionpb.LeaderRequest{Name: []byte("el")}); status.Convert(err).Message() != concurrency.ErrElectionNoLeader.Error() {
		t.Fatalf("Leader with no candidate: %v, want %v", err, concurrency.ErrElectionNoLeader)
	}
	obsCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	obs, err := ec.Observe(obsCtx, &v3electionpb.LeaderRequest{Name: []byte("el")})
	if err != nil {
		t.Fatal(err)
	}
	l1, err := cli.Grant(ctx(t), 30)
	if err != nil {
		t.Fatal(err)
	}
	camp, err := ec.Campaign(ctx(t), &v3electionpb.CampaignRequest{Name: []byte("el"), Lease: int64(l1.ID), Value: []byte("one")})
	if err != nil {
		t.Fatal(err)
	}
	expectObserved(t, obs, "one")
	if _, err := ec.Proclaim(ctx(t), &v3electionpb.ProclaimRequest{Leader: camp.Leader, Value: []byte("one-b")}); err != nil {
		t.Fatal(err)
	}
	expectObserved(t, obs, "one-b")

	// A client-side candidate queues behind the server-side leader.
	s2, err := concurrency.NewSession(c.client(1), concurrency.WithTTL(30))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	e2 := concurrency.NewElection(s2, "el")
	won := make(chan error, 1)
	go func() { won <- e2.Campaign(context.Background(), "two") }()
	if _, err := ec.Resign(ctx(t), &v3electionpb.ResignRequest{Leader: camp.Leader}); err != nil {
		t.Fatal(err)
	}
	if err := <-won; err != nil {
		t.Fatal(err)
	}
	expectObserved(t, obs, "two")
	lr, err := ec.Leader(ctx(t), &v3electionpb.LeaderRequest{Name: []byte("el")})
	if err != nil || string(lr.Kv.Value) != "two" {
		t.Fatalf("Leader = %v (err %v), want two", lr, err)
	}
	if _, err := ec.Proclaim(ctx(t), &v3electionpb.ProclaimRequest{}); err == nil {
		t.Fatal("Proclaim without a leader key succeeded")
	}
}

// expectObserved reads Observe answers until one carries want.
func expectObserved(t *testing.T, obs v3electionpb.Election_ObserveClient, want string) {
	t.Helper()
	for {
		r, err := obs.Recv()
		if err != nil {
			t.Fatalf("observe: %v (waiting for %q)", err, want)
		}
		if string(r.Kv.Value) == want {
			return
		}
	}
}

// concurrency.STM (repeatable-read transactions built on Txn) keeps a
// counter exact under concurrent increments from every member.
func TestSTMCounter(t *testing.T) {
	c := newCluster(t, 3, nil)
	const workers, incs = 4, 5
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		cli := c.client(i % 3)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < incs; j++ {
				_, err := concurrency.NewSTM(cli, func(s concurrency.STM) error {
					n, _ := strconv.Atoi(s.Get("stm/counter"))
					s.Put("stm/counter", strconv.Itoa(n+1))
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	gr, err := c.client().Get(ctx(t), "stm/counter")
	if err != nil || len(gr.Kvs) != 1 || string(gr.Kvs[0].Value) != strconv.Itoa(workers*incs) {
		t.Fatalf("counter = %v (err %v), want %d", gr, err, workers*incs)
	}
}
