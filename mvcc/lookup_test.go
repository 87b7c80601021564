package mvcc

import (
	"fmt"
	"math/rand/v2"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// One group's puts, with the generation cache emptied before each so that
// every put looks its key up: keys written in several flushed tables (level
// 0 and below), keys deleted, keys never written, and keys
// written earlier in the same run, in no order. Each put's version and
// create revision must be what the committed store says, as a fresh
// iterator per put found them; the run's iterator must see the run's own
// earlier writes (without the refresh before each seek it does not).
func TestLookupAcrossTablesAndTheRun(t *testing.T) {
	h := newHarness(t, Options{})
	const keys = 400
	for round := 0; round < 3; round++ { // three tables in level 0, under its compaction threshold (4)
		for i := round * keys / 8; i < keys; i += 2 { // each round's table starts further on
			h.put(fmt.Sprintf("k%03d", i), fmt.Sprint(round))
		}
		if err := h.db.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	h.del("k100", "k150")
	if n := h.db.Metrics().Total().TablesCount; n < 1 { // how many depends on Pebble's compactions meanwhile
		t.Fatalf("the store has no table (test setup)")
	}
	want := map[string]generation{}
	for i := 0; i < keys+50; i++ {
		k := fmt.Sprintf("k%03d", i)
		g, err := getGeneration(h.db, h.s.prefixSeek, []byte(k), h.s.Rev())
		if err != nil {
			t.Fatal(err)
		}
		want[k] = g
	}
	g, err := h.s.NewGroup()
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 600; n++ {
		k := fmt.Sprintf("k%03d", rng.IntN(keys+50))
		h.s.gens.reset()
		h.idx++
		res, err := g.Apply(h.idx, 1, &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte(k), Value: []byte("v")}})
		if err != nil || res.Err != nil {
			t.Fatalf("put %s: %v %v", k, err, res.Err)
		}
		kv := res.Events[0].Kv
		prev := want[k]
		wantVer, wantCreate := int64(1), kv.ModRevision
		if prev.live {
			wantVer, wantCreate = prev.version+1, prev.create
		}
		if kv.Version != wantVer || kv.CreateRevision != wantCreate {
			t.Fatalf("put %d of %s: version %d create %d, want %d %d (before it: %+v)", n, k, kv.Version, kv.CreateRevision, wantVer, wantCreate, prev)
		}
		want[k] = generation{live: true, create: kv.CreateRevision, version: kv.Version}
	}
	if err := g.Commit(); err != nil {
		t.Fatal(err)
	}
	for k, w := range want {
		got, err := getGeneration(h.db, h.s.prefixSeek, []byte(k), h.s.Rev())
		if err != nil || got.live != w.live || got.version != w.version || got.create != w.create {
			t.Fatalf("after commit %s: %+v %v, want %+v", k, got, err, w)
		}
	}
}
