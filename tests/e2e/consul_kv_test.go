package e2e

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"
)

// TestConsulKV drives Consul's KV store, sessions, locks and semaphores on
// a 3-member synod with the real Consul API client, one per member.
func TestConsulKV(t *testing.T) {
	cc := startConsulCluster(t)
	t.Run("crud", func(t *testing.T) { testKVCrud(t, cc) })
	t.Run("cas race", func(t *testing.T) { testKVCASRace(t, cc) })
	t.Run("blocking get", func(t *testing.T) { testKVBlocking(t, cc) })
	t.Run("txn", func(t *testing.T) { testKVTxn(t, cc) })
	t.Run("session reads", func(t *testing.T) { testSessionReads(t, cc) })
	t.Run("session ends with its check", func(t *testing.T) { testSessionCheck(t, cc) })
	t.Run("lock mutual exclusion", func(t *testing.T) { testLockExclusion(t, cc) })
	t.Run("lock destroy and delay", func(t *testing.T) { testLockDelay(t, cc) })
	t.Run("semaphore", func(t *testing.T) { testSemaphore(t, cc) })
	t.Run("slow", func(t *testing.T) { // the two wait for TTLs side by side
		ready := make(chan struct{}) // the TTL test's sessions exist: m0 may go
		t.Run("session ttl", func(t *testing.T) { t.Parallel(); testSessionTTL(t, cc, ready) })
		t.Run("kill -9 lock holder", func(t *testing.T) { t.Parallel(); testLockKill9(t, cc, ready) })
	})
}

// consulHTTP sends a raw request (the harness's httpDo) and returns the
// status, headers and body.
func consulHTTP(method, url, body string) (int, http.Header, string) {
	return httpDo(http.DefaultClient, method, url, "", body, nil)
}

func testKVCrud(t *testing.T, cc *consulCluster) {
	a, b := cc.clients[0].KV(), cc.clients[1].KV()
	if _, err := a.Put(&consul.KVPair{Key: "app/config/db", Value: []byte("postgres"), Flags: 1<<64 - 1}, nil); err != nil {
		t.Fatal(err)
	}
	p, meta, err := b.Get("app/config/db", nil)
	if err != nil || p == nil {
		t.Fatalf("get from m1: %v %v", p, err)
	}
	if string(p.Value) != "postgres" || p.Flags != 1<<64-1 || p.CreateIndex == 0 || p.ModifyIndex != meta.LastIndex {
		t.Fatalf("pair = %+v (index %d), want the value, flags 2^64-1 and ModifyIndex = X-Consul-Index", p, meta.LastIndex)
	}
	for _, k := range []string{"app/config/cache", "app/web/port", "app/x"} {
		if _, err := a.Put(&consul.KVPair{Key: k, Value: []byte(k)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	keys, _, err := b.Keys("app/", "/", nil)
	if err != nil || strings.Join(keys, ",") != "app/config/,app/web/,app/x" {
		t.Fatalf("keys app/ with separator: %v %v", keys, err)
	}
	pairs, _, err := b.List("app/config/", nil)
	if err != nil || len(pairs) != 2 || pairs[0].Key != "app/config/cache" || pairs[1].Key != "app/config/db" {
		t.Fatalf("recurse app/config/: %v %v", pairs, err)
	}
	code, h, body := consulHTTP("GET", cc.urls[2]+"/v1/kv/app/config/db?raw", "")
	if code != 200 || body != "postgres" || h.Get("X-Consul-Index") == "" {
		t.Fatalf("?raw: %d %q %v", code, body, h)
	}
	code, h, body = consulHTTP("GET", cc.urls[2]+"/v1/kv/nope", "")
	if code != 404 || body != "" || h.Get("X-Consul-Index") == "" {
		t.Fatalf("missing key: %d %q, want 404 with no body and an index", code, body)
	}
	if _, err := a.DeleteTree("app/config/", nil); err != nil {
		t.Fatal(err)
	}
	if p, _, err := b.Get("app/config/db", nil); err != nil || p != nil {
		t.Fatalf("after delete-tree: %v %v", p, err)
	}
	for _, tc := range []struct {
		method, path, body string
		code               int
		text               string
	}{
		{"PUT", "/v1/kv/x?cas=1&acquire=abc", "", 400, "Conflicting flags: "},
		{"PUT", "/v1/kv/x?flags=-1", "", 500, "strconv.ParseUint"},
		{"PUT", "/v1/kv/x?acquire=no-such-session", "", 500, `invalid session "no-such-session"`},
		{"PUT", "/v1/kv/big", strings.Repeat("v", 512<<10+1), 413, "Request body(524289 bytes) too large, max size: 524288 bytes."},
		{"GET", "/v1/kv/", "", 400, "Missing key name"},
		{"PUT", "/v1/session/create", `{"TTL":"5s"}`, 500, "Invalid Session TTL '5000000000', must be between [10s=24h0m0s]"},
		{"PUT", "/v1/session/renew/f3b1c1d6-0000-4000-8000-000000000000", "", 404, "Session id 'f3b1c1d6-0000-4000-8000-000000000000' not found"},
		{"PUT", "/v1/txn", "[" + strings.Repeat(`{"KV":{"Verb":"get","Key":"a"}},`, 64) + `{"KV":{"Verb":"get","Key":"a"}}]`, 413, "Transaction contains too many operations (65 > 64)"},
	} {
		code, _, body := consulHTTP(tc.method, cc.urls[1]+tc.path, tc.body)
		if code != tc.code || !strings.HasPrefix(body, tc.text) {
			t.Errorf("%s %s: %d %q, want %d %q...", tc.method, tc.path, code, body, tc.code, tc.text)
		}
	}
}

// testKVCASRace increments a counter with CAS from two members at once:
// every successful CAS must count, none twice.
func testKVCASRace(t *testing.T, cc *consulCluster) {
	const perClient = 15
	if _, err := cc.clients[0].KV().Put(&consul.KVPair{Key: "counter", Value: []byte("0")}, nil); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for i := 0; i < 2; i++ {
		kv := cc.clients[i].KV()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for done := 0; done < perClient; {
				p, _, err := kv.Get("counter", nil)
				if err != nil {
					errs <- err
					return
				}
				n, _ := strconv.Atoi(string(p.Value))
				ok, _, err := kv.CAS(&consul.KVPair{Key: "counter", Value: []byte(strconv.Itoa(n + 1)), ModifyIndex: p.ModifyIndex}, nil)
				if err != nil {
					errs <- err
					return
				}
				if ok {
					done++
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	p, _, err := cc.clients[2].KV().Get("counter", nil)
	if err != nil || string(p.Value) != strconv.Itoa(2*perClient) {
		t.Fatalf("counter = %v (%v), want %d: a CAS was lost or counted twice", p, err, 2*perClient)
	}
}

func testKVBlocking(t *testing.T, cc *consulCluster) {
	reader, writer := cc.clients[2].KV(), cc.clients[0].KV()
	if _, err := writer.Put(&consul.KVPair{Key: "watched", Value: []byte("1")}, nil); err != nil {
		t.Fatal(err)
	}
	_, meta, err := reader.Get("watched", nil)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		p    *consul.KVPair
		meta *consul.QueryMeta
		err  error
	}
	block := func(idx uint64) chan result {
		ch := make(chan result, 1)
		go func() {
			p, m, err := reader.Get("watched", &consul.QueryOptions{WaitIndex: idx, WaitTime: 20 * time.Second})
			ch <- result{p, m, err}
		}()
		return ch
	}
	ch := block(meta.LastIndex)
	if _, err := writer.Put(&consul.KVPair{Key: "unrelated", Value: []byte("x")}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-ch:
		t.Fatalf("blocking get returned on a write to another key: %+v %v", r.p, r.err)
	case <-time.After(500 * time.Millisecond):
	}
	start := time.Now()
	if _, err := writer.Put(&consul.KVPair{Key: "watched", Value: []byte("2")}, nil); err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil || r.p == nil || string(r.p.Value) != "2" || r.meta.LastIndex <= meta.LastIndex || time.Since(start) > 5*time.Second {
		t.Fatalf("after a put on m0: %+v %+v %v after %v", r.p, r.meta, r.err, time.Since(start))
	}
	ch = block(r.meta.LastIndex)
	time.Sleep(200 * time.Millisecond) // let the query block (it must wake either way)
	if _, err := writer.Delete("watched", nil); err != nil {
		t.Fatal(err)
	}
	d := <-ch
	if d.err != nil || d.p != nil || d.meta.LastIndex <= r.meta.LastIndex {
		t.Fatalf("after a delete: %+v %+v %v, want no pair and a higher index", d.p, d.meta, d.err)
	}
	// A key that goes with a tree delete of a prefix of it.
	if _, err := writer.Put(&consul.KVPair{Key: "tree/x/y", Value: []byte("1")}, nil); err != nil {
		t.Fatal(err)
	}
	p, meta, err := reader.Get("tree/x/y", nil)
	if err != nil || p == nil {
		t.Fatal(p, err)
	}
	tc := make(chan result, 1)
	go func() {
		p, m, err := reader.Get("tree/x/y", &consul.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 20 * time.Second})
		tc <- result{p, m, err}
	}()
	time.Sleep(200 * time.Millisecond) // let the query block (it must wake either way)
	if _, err := writer.DeleteTree("tree/", nil); err != nil {
		t.Fatal(err)
	}
	select {
	case d = <-tc:
	case <-time.After(10 * time.Second):
		t.Fatal("a blocking get was not woken by a tree delete of a prefix of its key")
	}
	if d.err != nil || d.p != nil || d.meta.LastIndex <= meta.LastIndex {
		t.Fatalf("after a tree delete of tree/: %+v %+v %v, want no pair and a higher index", d.p, d.meta, d.err)
	}
}

func testKVTxn(t *testing.T, cc *consulCluster) {
	txn := cc.clients[1].Txn()
	ok, resp, _, err := txn.Txn(consul.TxnOps{
		{KV: &consul.KVTxnOp{Verb: consul.KVSet, Key: "t/a", Value: []byte("A")}},
		{KV: &consul.KVTxnOp{Verb: consul.KVSet, Key: "t/b", Value: []byte("B"), Flags: 9}},
		{KV: &consul.KVTxnOp{Verb: consul.KVGet, Key: "t/a"}},
	}, nil)
	if err != nil || !ok || len(resp.Results) != 3 || string(resp.Results[2].KV.Value) != "A" ||
		resp.Results[0].KV.ModifyIndex == 0 || resp.Results[0].KV.ModifyIndex != resp.Results[1].KV.ModifyIndex {
		t.Fatalf("txn: ok=%v %+v %v; want 3 results at one index", ok, resp, err)
	}
	idx := resp.Results[0].KV.ModifyIndex
	ok, resp, _, err = txn.Txn(consul.TxnOps{
		{KV: &consul.KVTxnOp{Verb: consul.KVSet, Key: "t/c", Value: []byte("C")}},
		{KV: &consul.KVTxnOp{Verb: consul.KVCAS, Key: "t/a", Value: []byte("A2"), Index: idx - 1}},
	}, nil)
	if err != nil || ok || len(resp.Errors) != 1 || resp.Errors[0].OpIndex != 1 ||
		resp.Errors[0].What != `failed to set key "t/a", index is stale` {
		t.Fatalf("failing txn: ok=%v %+v %v; want 409 with op 1's error", ok, resp, err)
	}
	if p, _, err := cc.clients[2].KV().Get("t/c", nil); err != nil || p != nil {
		t.Fatalf("t/c after a failed txn: %v %v, want nothing written", p, err)
	}
	code, _, _ := consulHTTP("PUT", cc.urls[0]+"/v1/txn", `[{"KV":{"Verb":"check-not-exists","Key":"t/a"}}]`)
	if code != http.StatusConflict {
		t.Fatalf("failed read-only txn: %d, want 409", code)
	}
}

// testSessionReads: a blocking session list on one member is woken by a
// create on another; info, node and ?stale reads see the session; destroy
// ends it.
func testSessionReads(t *testing.T, cc *consulCluster) {
	reader, writer := cc.clients[2].Session(), cc.clients[0].Session()
	_, meta, err := reader.List(nil)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		list []*consul.SessionEntry
		meta *consul.QueryMeta
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		l, m, err := reader.List(&consul.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 20 * time.Second})
		ch <- result{l, m, err}
	}()
	select {
	case r := <-ch:
		t.Fatalf("blocking session list returned with no change: %v %v", r.list, r.err)
	case <-time.After(300 * time.Millisecond):
	}
	id, _, err := writer.Create(&consul.SessionEntry{Name: "reader-test", Behavior: consul.SessionBehaviorDelete}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	found := false
	for _, e := range r.list {
		found = found || e.ID == id
	}
	if r.err != nil || !found || r.meta.LastIndex <= meta.LastIndex {
		t.Fatalf("after a create on m0: %v %v %v, want the new session and a higher index", r.list, r.meta, r.err)
	}
	e, _, err := reader.Info(id, &consul.QueryOptions{AllowStale: true})
	if err != nil || e == nil || e.Node != cc.Members[0].Name || e.Behavior != "delete" || e.LockDelay != 15*time.Second ||
		len(e.NodeChecks) != 1 || e.NodeChecks[0] != "serfHealth" {
		t.Fatalf("info ?stale: %+v %v; want m0's node, behavior delete, Consul's defaults", e, err)
	}
	byNode, _, err := reader.Node(cc.Members[0].Name, nil)
	if err != nil || len(byNode) == 0 {
		t.Fatalf("sessions of node m0: %v %v", byNode, err)
	}
	if _, err := cc.clients[1].KV().Put(&consul.KVPair{Key: "eph/k", Value: []byte("x")}, nil); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := cc.clients[1].KV().Acquire(&consul.KVPair{Key: "eph/k", Value: []byte("x"), Session: id}, nil); err != nil || !ok {
		t.Fatalf("acquire: %v %v", ok, err)
	}
	if _, err := writer.Destroy(id, nil); err != nil {
		t.Fatal(err)
	}
	if e, _, err := reader.Info(id, nil); err != nil || e != nil {
		t.Fatalf("info after destroy: %+v %v", e, err)
	}
	if p, _, err := cc.clients[2].KV().Get("eph/k", nil); err != nil || p != nil {
		t.Fatalf("a behavior-delete session's key after destroy: %+v %v, want it deleted", p, err)
	}
}

// testSessionCheck: a session that names a service's TTL check cannot be
// created while it is critical, and ends (its lock released) when the check
// turns critical.
func testSessionCheck(t *testing.T, cc *consulCluster) {
	agent, sess := cc.clients[1].Agent(), cc.clients[1].Session()
	if err := agent.ServiceRegister(&consul.AgentServiceRegistration{ID: "guarded", Name: "guarded", Port: 1,
		Check: &consul.AgentServiceCheck{CheckID: "guarded-ttl", TTL: "30s"}}); err != nil {
		t.Fatal(err)
	}
	entry := &consul.SessionEntry{NodeChecks: []string{"serfHealth"}, ServiceChecks: []consul.ServiceCheck{{ID: "guarded-ttl"}}}
	if _, _, err := sess.Create(entry, nil); err == nil || !strings.Contains(err.Error(), "Check 'guarded-ttl' is in critical state") {
		t.Fatalf("a session on a critical check: %v, want Consul's refusal", err)
	}
	if err := agent.PassTTL("guarded-ttl", ""); err != nil {
		t.Fatal(err)
	}
	id, _, err := sess.Create(entry, nil)
	if err != nil {
		t.Fatal(err)
	}
	kv := cc.clients[2].KV()
	if ok, _, err := kv.Acquire(&consul.KVPair{Key: "guarded/lock", Session: id}, nil); err != nil || !ok {
		t.Fatalf("acquire: %v %v", ok, err)
	}
	if err := agent.FailTTL("guarded-ttl", "down"); err != nil {
		t.Fatal(err)
	}
	err = waitFor(10*time.Second, 100*time.Millisecond, func() (bool, error) {
		p, _, err := kv.Get("guarded/lock", nil)
		return err == nil && p != nil && p.Session == "", err
	})
	if err != nil {
		t.Fatalf("the lock of a session whose check went critical: %v", err)
	}
	if e, _, err := sess.Info(id, nil); err != nil || e != nil {
		t.Fatalf("the session after its check went critical: %+v %v, want it gone", e, err)
	}
}

// testLockExclusion runs two api.Lock contenders on different members and
// checks that their critical sections never overlap.
func testLockExclusion(t *testing.T, cc *consulCluster) {
	const rounds = 4
	var holders, overlaps, total atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		l, err := cc.clients[i].LockOpts(&consul.LockOptions{Key: "locks/excl", SessionTTL: "10s"})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				lost, err := l.Lock(nil)
				if err != nil {
					t.Error(err)
					return
				}
				if holders.Add(1) != 1 {
					overlaps.Add(1)
				}
				total.Add(1)
				select {
				case <-lost:
					t.Error("lock lost while held")
				case <-time.After(100 * time.Millisecond):
				}
				holders.Add(-1)
				if err := l.Unlock(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if overlaps.Load() != 0 || total.Load() != 2*rounds {
		t.Fatalf("%d overlapping holds in %d, want none in %d", overlaps.Load(), total.Load(), 2*rounds)
	}
}

// testLockDelay: destroying the holder's session releases its lock at once,
// and the key cannot be acquired again for the session's lock delay.
func testLockDelay(t *testing.T, cc *consulCluster) {
	sa, sb := cc.clients[0].Session(), cc.clients[1].Session()
	holder, _, err := sa.Create(&consul.SessionEntry{Name: "holder", LockDelay: 3 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := sb.Create(&consul.SessionEntry{Name: "other", LockDelay: time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Destroy(other, nil)
	kva, kvb := cc.clients[0].KV(), cc.clients[1].KV()
	if ok, _, err := kva.Acquire(&consul.KVPair{Key: "locks/delay", Value: []byte("a"), Session: holder}, nil); err != nil || !ok {
		t.Fatalf("acquire: %v %v", ok, err)
	}
	if ok, _, err := kvb.Acquire(&consul.KVPair{Key: "locks/delay", Session: other}, nil); err != nil || ok {
		t.Fatalf("acquire of a held key by another session: %v %v, want false", ok, err)
	}
	if _, err := sa.Destroy(holder, nil); err != nil {
		t.Fatal(err)
	}
	destroyed := time.Now()
	p, _, err := kvb.Get("locks/delay", nil)
	if err != nil || p == nil || p.Session != "" || p.LockIndex != 1 || string(p.Value) != "a" {
		t.Fatalf("after destroy: %+v %v, want the key kept, released, LockIndex 1", p, err)
	}
	if ok, _, err := kvb.Acquire(&consul.KVPair{Key: "locks/delay", Session: other}, nil); err != nil || ok {
		t.Fatalf("acquire during the lock delay: %v %v, want false", ok, err)
	}
	err = waitFor(15*time.Second, 200*time.Millisecond, func() (bool, error) {
		ok, _, err := kvb.Acquire(&consul.KVPair{Key: "locks/delay", Session: other}, nil)
		return ok, err
	})
	if err != nil {
		t.Fatalf("never acquired after the lock delay: %v", err)
	}
	if took := time.Since(destroyed); took < 2500*time.Millisecond {
		t.Fatalf("acquired %v after the destroy, within the 3s lock delay", took)
	}
	if ok, _, err := kva.Acquire(&consul.KVPair{Key: "locks/delay", Session: holder}, nil); err == nil || ok {
		t.Fatalf("acquire by the destroyed session: %v %v, want an error", ok, err)
	}
}

// testSemaphore: three contenders on three members, limit 2.
func testSemaphore(t *testing.T, cc *consulCluster) {
	var holders, peak, total atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		sem, err := cc.clients[i].SemaphoreOpts(&consul.SemaphoreOptions{Prefix: "sem/", Limit: 2, SessionTTL: "10s"})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < 2; r++ {
				lost, err := sem.Acquire(nil)
				if err != nil {
					t.Error(err)
					return
				}
				n := holders.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				total.Add(1)
				select {
				case <-lost:
					t.Error("semaphore lost while held")
				case <-time.After(300 * time.Millisecond):
				}
				holders.Add(-1)
				if err := sem.Release(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if peak.Load() > 2 || total.Load() != 6 {
		t.Fatalf("peak holders %d (limit 2), %d acquisitions (want 6)", peak.Load(), total.Load())
	}
	if peak.Load() < 2 {
		t.Logf("the semaphore was never held by two at once (timing)")
	}
}

// testSessionTTL: a TTL session left alone ends (its lock released); one
// renewed stays.
func testSessionTTL(t *testing.T, cc *consulCluster, ready chan struct{}) {
	setUp := false
	defer func() {
		if !setUp {
			close(ready)
		}
	}()
	s := cc.clients[2].Session()
	left, _, err := s.Create(&consul.SessionEntry{TTL: "10s", LockDelay: time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kept, _, err := s.Create(&consul.SessionEntry{TTL: "10s"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go s.RenewPeriodic("10s", kept, nil, stop)
	if ok, _, err := cc.clients[2].KV().Acquire(&consul.KVPair{Key: "ttl/held", Session: left}, nil); err != nil || !ok {
		t.Fatalf("acquire: %v %v", ok, err)
	}
	created := time.Now()
	setUp = true
	close(ready)
	err = waitFor(35*time.Second, 250*time.Millisecond, func() (bool, error) {
		e, _, err := s.Info(left, nil)
		return e == nil, err
	})
	if err != nil {
		t.Fatalf("the session left alone never ended: %v", err)
	}
	if took := time.Since(created); took < 19*time.Second { // Consul's server: twice the TTL
		t.Fatalf("a 10s session ended after %v, before twice its TTL", took)
	}
	err = waitFor(10*time.Second, 100*time.Millisecond, func() (bool, error) {
		p, _, err := cc.clients[1].KV().Get("ttl/held", nil)
		return err == nil && p != nil && p.Session == "", err
	})
	if err != nil {
		t.Fatalf("its lock was not released: %v", err)
	}
	if e, _, err := cc.clients[1].Session().Info(kept, nil); err != nil || e == nil {
		t.Fatalf("the renewed session: %v %v, want it alive", e, err)
	}
}

// testLockKill9: the member a lock holder talks to is killed with -9; a
// contender on another member must not get the lock while the holder's
// session lives, and gets it once the session has ended (its TTL passed,
// or, as in Consul, its node's serfHealth check went critical).
func testLockKill9(t *testing.T, cc *consulCluster, ready chan struct{}) {
	// Lock delay 1s, not api.Session's 15s default (which synod honours as Consul).
	holder, err := cc.clients[0].LockOpts(&consul.LockOptions{Key: "locks/kill", SessionTTL: "10s", LockDelay: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Lock(nil); err != nil {
		t.Fatal(err)
	}
	p, _, err := cc.clients[1].KV().Get("locks/kill", nil)
	if err != nil || p == nil || p.Session == "" {
		t.Fatalf("lock key: %+v %v", p, err)
	}
	holderSession := p.Session
	contender, err := cc.clients[1].LockOpts(&consul.LockOptions{Key: "locks/kill", SessionTTL: "10s"})
	if err != nil {
		t.Fatal(err)
	}
	<-ready
	cc.Kill9(0)
	killed := time.Now()
	// The contender starts once m1 serves again (a leader elected, if m0
	// led): api.Lock gives up on the first error of its session's create.
	err = waitFor(10*time.Second, 100*time.Millisecond, func() (bool, error) {
		_, _, err := cc.clients[1].KV().Get("locks/kill", nil)
		return err == nil, err
	})
	if err != nil {
		t.Fatal(err)
	}
	acquired := make(chan error, 1)
	go func() {
		_, err := contender.Lock(nil)
		acquired <- err
	}()
	select {
	case err := <-acquired:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(40 * time.Second):
		t.Fatalf("the contender never got the lock, %v after the kill", time.Since(killed))
	}
	took := time.Since(killed)
	e, _, err := cc.clients[2].Session().Info(holderSession, &consul.QueryOptions{RequireConsistent: true})
	if err != nil || e != nil {
		t.Fatalf("contender holds the lock %v after the kill while the holder's session is %+v (%v)", took, e, err)
	}
	t.Logf("lock passed %v after the holder's member was killed", took)
	contender.Unlock()
	cc.Restart(0)
}
