package mvcc

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

func TestGenCacheBounded(t *testing.T) {
	var c genCache
	for i := 0; i < 3*genCacheSize; i++ {
		c.set([]byte(fmt.Sprint(i)), generation{create: int64(i), version: 1, live: true})
		if len(c.m) > genCacheSize {
			t.Fatalf("%d entries after %d sets, bound %d", len(c.m), i+1, genCacheSize)
		}
	}
	last := []byte(fmt.Sprint(3*genCacheSize - 1))
	if g, ok := c.get(last); !ok || g.create != 3*genCacheSize-1 {
		t.Fatalf("the entry just set: %+v %v", g, ok)
	}
	c.forget(last)
	if g, ok := c.get(last); !ok || g.live {
		t.Fatalf("after forget: %+v %v, want cached and not live", g, ok)
	}
	c.forget([]byte("never set"))
	if _, ok := c.get([]byte("never set")); ok {
		t.Fatal("forget added a key")
	}
	c.reset()
	if _, ok := c.get(last); ok || len(c.m) != 0 {
		t.Fatal("reset kept entries")
	}
}

// cacheAgrees checks that every cached generation is what the committed
// store holds: after any apply call returns, whatever it committed or
// discarded, the cache must describe the store.
func cacheAgrees(t *testing.T, h *harness, step string) {
	t.Helper()
	for k, g := range h.s.gens.m {
		want, err := getGeneration(h.db, h.s.prefixSeek, []byte(k), h.s.Rev())
		if err != nil {
			t.Fatalf("%s: read %q: %v", step, k, err)
		}
		if !want.live {
			want = generation{} // create and version mean nothing then
		} else {
			rr, err := rangeKeys(context.Background(), h.db, []byte(k), nil, h.s.Rev(), 0, rangeOpts{})
			if err != nil || len(rr.kvs) != 1 {
				t.Fatalf("%s: read %q: %v %v", step, k, rr, err)
			}
			want.mod = rr.kvs[0].ModRevision
		}
		if *g != want {
			t.Fatalf("%s: cached generation of %q is %+v, the store has %+v", step, k, *g, want)
		}
	}
}

// TestGenCacheMatchesStore drives random writes through every apply path,
// including those that discard writes already added to a batch (an error
// from ApplyWith's extra writes, a group closed without commit), compactions, a
// restore and reopen, and checks after each that the generation cache agrees
// with the committed store, that the puts' versions equal those of a
// store applying the same entries with a cold cache, and that the lease
// index lists exactly the leased keys.
func TestGenCacheMatchesStore(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { genCacheRun(t, seed) })
	}
}

func genCacheRun(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0))
	opts := Options{LeaseExists: func(id int64) bool { return id == 7 }}
	h, cold := newHarness(t, opts), newHarness(t, opts)
	key := func() string { return fmt.Sprint("k", rng.IntN(6)) }
	put := func() *pb.InternalRaftRequest {
		return &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte(key()), Value: []byte("v"), Lease: []int64{0, 7, 9}[rng.IntN(3)]}}
	}
	partial := func() *pb.InternalRaftRequest { // fails its check (ErrKeyNotFound) after a put and a delete
		return &pb.InternalRaftRequest{Txn: &pb.TxnRequest{Success: []*pb.RequestOp{
			{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("other"), Value: []byte("x")}}},
			{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte(key())}}},
			{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("never"), IgnoreValue: true}}},
		}}}
	}
	del := func() *pb.InternalRaftRequest {
		return &pb.InternalRaftRequest{DeleteRange: &pb.DeleteRangeRequest{Key: []byte(key()), RangeEnd: []byte("k" + fmt.Sprint(rng.IntN(7)))}}
	}
	cas := func() *pb.InternalRaftRequest { // a compare the cache may answer; each branch writes its own key
		c := &pb.Compare{Key: []byte(key()), Target: pb.Compare_CompareTarget(rng.IntN(5)), Result: pb.Compare_CompareResult(rng.IntN(4))}
		n := int64(rng.IntN(8))
		switch c.Target {
		case pb.Compare_VERSION:
			c.TargetUnion = &pb.Compare_Version{Version: n % 4}
		case pb.Compare_CREATE:
			c.TargetUnion = &pb.Compare_CreateRevision{CreateRevision: h.s.Rev() - n}
		case pb.Compare_MOD:
			c.TargetUnion = &pb.Compare_ModRevision{ModRevision: h.s.Rev() - n}
		case pb.Compare_VALUE:
			c.TargetUnion = &pb.Compare_Value{Value: []byte("v")}
		case pb.Compare_LEASE:
			c.TargetUnion = &pb.Compare_Lease{Lease: []int64{0, 7, 9}[rng.IntN(3)]}
		}
		branch := func(k string) []*pb.RequestOp {
			return []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(k), Value: []byte("t")}}}}
		}
		return &pb.InternalRaftRequest{Txn: &pb.TxnRequest{Compare: []*pb.Compare{c}, Success: branch("yes"), Failure: branch("no")}}
	}
	random := func() *pb.InternalRaftRequest {
		return []func() *pb.InternalRaftRequest{put, put, put, del, partial, cas, cas}[rng.IntN(7)]()
	}
	// applyBoth applies req to h (through Apply) and to cold with an
	// emptied cache, and requires the same result.
	applyBoth := func(req *pb.InternalRaftRequest) {
		got := h.apply(req)
		cold.s.gens.reset()
		want := cold.apply(req)
		if !errors.Is(got.Err, want.Err) || fmt.Sprint(got.Events) != fmt.Sprint(want.Events) {
			t.Fatalf("%v: %v %v, with a cold cache %v %v", req, got.Err, got.Events, want.Err, want.Events)
		}
	}
	var snap string
	for step := 0; step < 300; step++ {
		name := fmt.Sprint("step ", step)
		switch op := rng.IntN(20); {
		case op < 12:
			applyBoth(random())
		case op < 14: // the same group on both, committed or closed
			reqs := make([]*pb.InternalRaftRequest, 1+rng.IntN(5))
			for i := range reqs {
				reqs[i] = random()
			}
			commit := rng.IntN(2) == 0
			var results [2]string
			for i, s := range []*harness{h, cold} {
				results[i] = applyGroup(t, s, reqs, commit, s == cold)
			}
			if results[0] != results[1] {
				t.Fatalf("%s: group %v: %s, with a cold cache %s", name, reqs, results[0], results[1])
			}
		case op < 15: // extra writes fail after the put was added
			h.idx++
			req := &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte(key()), Value: []byte("v")}}
			if _, err := h.s.ApplyWith(h.idx, 1, req, func(*pebble.Batch) error { return errors.New("extra failed") }); err == nil {
				t.Fatalf("%s: ApplyWith with failing extra succeeded", name)
			}
			h.idx--
		case op < 16:
			for _, s := range []*harness{h, cold} {
				waitClosed(t, s.compact(s.s.Rev()).Compacted, "compaction")
			}
		case op < 17:
			snap, _ = writeSnapshot(t, h)
		case op < 18 && snap != "":
			for _, s := range []*harness{h, cold} {
				if err := restoreFile(s.s, snap); err != nil {
					t.Fatal(err)
				}
				s.idx, _ = s.s.Applied()
			}
		case op < 19:
			h.reopen()
		}
		cacheAgrees(t, h, name)
		for _, s := range []*harness{h, cold} {
			if !s.s.leaseIdx.Load() {
				t.Fatalf("%s: the lease index of a store only this build wrote is not complete", name)
			}
			if err := s.s.VerifyLeaseIndex(); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
	}
}

// applyGroup applies reqs as one group to h, emptying the cache before each
// entry if cold, then commits or closes it, and describes the results.
func applyGroup(t *testing.T, h *harness, reqs []*pb.InternalRaftRequest, commit, cold bool) string {
	t.Helper()
	g, err := h.s.NewGroup()
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	var out []string
	idx := h.idx
	for _, req := range reqs {
		if cold {
			h.s.gens.reset()
		}
		idx++
		res, err := g.Apply(idx, 1, req)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprint(res.Err, res.Events))
	}
	if !commit {
		return fmt.Sprint(out, " closed")
	}
	if err := g.Commit(); err != nil {
		t.Fatal(err)
	}
	h.idx = idx
	return fmt.Sprint(out, " committed")
}
