package mvcc

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"
)

// groupScript is a run of requests where later entries depend on earlier
// ones of the same run: a txn comparing a key put just before, a put
// continuing a generation started in the run, a delete of keys the run
// wrote, and requests failing with request-level errors.
func groupScript() []*pb.InternalRaftRequest {
	put := func(k, v string, lease int64) *pb.InternalRaftRequest {
		return &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte(k), Value: []byte(v), Lease: lease, PrevKv: true}}
	}
	cmpVal := func(k, v string) *pb.Compare {
		return &pb.Compare{Key: []byte(k), Target: pb.Compare_VALUE, Result: pb.Compare_EQUAL,
			TargetUnion: &pb.Compare_Value{Value: []byte(v)}}
	}
	return []*pb.InternalRaftRequest{
		put("a", "1", 0),
		put("a", "2", 0),
		put("b", "1", 0),
		{Txn: &pb.TxnRequest{
			Compare: []*pb.Compare{cmpVal("a", "2")},
			Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("c"), Value: []byte("won")}}}},
			Failure: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("c"), Value: []byte("lost")}}}},
		}},
		put("x", "no such lease", 99),
		{Put: &pb.PutRequest{Key: []byte("missing"), IgnoreValue: true}},
		{Txn: &pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("a"), Revision: 1000}}}}}},
		put("d", "leased", 7),
		{DeleteRange: &pb.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte("c"), PrevKv: true}},
		{DeleteRange: &pb.DeleteRangeRequest{Key: []byte("nothing")}},
		put("a", "reborn", 0),
	}
}

// A group gives every entry the result Apply gives it entry by entry, and
// leaves the same store: same contents at every revision, revision and
// applied index, also after a reopen.
func TestGroupMatchesApplyEntryByEntry(t *testing.T) {
	opts := Options{LeaseExists: func(id int64) bool { return id == 7 }}
	serial, grouped := newHarness(t, opts), newHarness(t, opts)
	serial.put("seed", "0")
	grouped.put("seed", "0")
	script := groupScript()
	want := make([]Result, len(script))
	for i, req := range script {
		want[i] = serial.apply(req)
	}
	g, err := grouped.s.NewGroup()
	if err != nil {
		t.Fatal(err)
	}
	got := make([]Result, len(script))
	for i, req := range script {
		grouped.idx++
		if got[i], err = g.Apply(grouped.idx, 1, req); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
	}
	if err := g.Commit(); err != nil {
		t.Fatal(err)
	}
	for i := range script {
		if !errors.Is(got[i].Err, want[i].Err) || (got[i].Err == nil) != (want[i].Err == nil) {
			t.Errorf("entry %d: error %v, entry by entry %v", i, got[i].Err, want[i].Err)
		}
		if !proto.Equal(got[i].Resp, want[i].Resp) {
			t.Errorf("entry %d: response %v, entry by entry %v", i, got[i].Resp, want[i].Resp)
		}
		if fmt.Sprint(got[i].Events) != fmt.Sprint(want[i].Events) {
			t.Errorf("entry %d: events %v, entry by entry %v", i, got[i].Events, want[i].Events)
		}
	}
	grouped.reopen()
	compareStores(t, serial, grouped)
}

// compareStores requires the same revision, applied index and contents at
// every revision.
func compareStores(t *testing.T, a, b *harness) {
	t.Helper()
	if a.s.Rev() != b.s.Rev() {
		t.Fatalf("revision %d, want %d", b.s.Rev(), a.s.Rev())
	}
	ai, at := a.s.Applied()
	bi, bt := b.s.Applied()
	if ai != bi || at != bt {
		t.Fatalf("applied %d/%d, want %d/%d", bi, bt, ai, at)
	}
	for rev := int64(1); rev <= a.s.Rev(); rev++ {
		r := &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, Revision: rev}
		equalMsg(t, fmt.Sprintf("all keys at revision %d", rev), b.rng(r), a.rng(r))
	}
}

// Nothing a group applies is visible, to readers or as the revision and
// applied index, before Commit; Close without Commit leaves the store as
// it was.
func TestGroupInvisibleUntilCommit(t *testing.T) {
	h := newHarness(t, Options{})
	h.put("k", "old")
	rev := h.s.Rev()
	for _, commit := range []bool{false, true} {
		g, err := h.s.NewGroup()
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			if _, err := g.Apply(h.idx+uint64(i)+1, 2, &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte("k"), Value: []byte(fmt.Sprint("new", i))}}); err != nil {
				t.Fatal(err)
			}
		}
		if v := string(h.get("k").Value); v != "old" || h.s.Rev() != rev {
			t.Fatalf("before Commit: k=%q at revision %d, want old at %d", v, h.s.Rev(), rev)
		}
		if !commit {
			g.Close()
			if v := string(h.get("k").Value); v != "old" || h.s.Rev() != rev {
				t.Fatalf("after Close: k=%q at revision %d", v, h.s.Rev())
			}
			continue
		}
		if err := g.Commit(); err != nil {
			t.Fatal(err)
		}
		if kv := h.get("k"); string(kv.Value) != "new2" || kv.Version != 4 || h.s.Rev() != rev+3 {
			t.Fatalf("after Commit: %v at revision %d", kv, h.s.Rev())
		}
		if ai, at := h.s.Applied(); ai != h.idx+3 || at != 2 {
			t.Fatalf("applied %d/%d, want %d/2", ai, at, h.idx+3)
		}
	}
}

// An entry failing after it wrote (a txn whose ops overlap, which the API
// edge refuses and on which etcd panics) is fatal: the group refuses to
// commit and nothing of it is written; alone, through Apply, it is fatal
// too and writes nothing.
func TestGroupFatalOnWriteAfterCheck(t *testing.T) {
	h := newHarness(t, Options{})
	h.put("k", "v")
	rev := h.s.Rev()
	bad := &pb.InternalRaftRequest{Txn: &pb.TxnRequest{Success: []*pb.RequestOp{
		{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte("k")}}},
		{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("k"), IgnoreValue: true}}},
	}}}
	g, err := h.s.NewGroup()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Apply(h.idx+1, 1, &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte("j"), Value: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Apply(h.idx+2, 1, bad); !errors.Is(err, ErrWriteAfterCheck) || !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("Apply of a txn failing after its delete: %v, want ErrWriteAfterCheck", err)
	}
	if err := g.Commit(); !errors.Is(err, ErrWriteAfterCheck) {
		t.Fatalf("Commit of a failed group: %v, want ErrWriteAfterCheck", err)
	}
	if h.s.Rev() != rev || h.get("j") != nil || h.get("k") == nil {
		t.Fatalf("a failed group left writes: revision %d (want %d), j=%v k=%v", h.s.Rev(), rev, h.get("j"), h.get("k"))
	}
	if _, err := h.s.Apply(h.idx+1, 1, bad); !errors.Is(err, ErrWriteAfterCheck) || h.s.Rev() != rev || h.get("k") == nil {
		t.Fatalf("the txn alone: %v, revision %d, k=%v", err, h.s.Rev(), h.get("k"))
	}
	if _, err := h.s.Range(context.Background(), &pb.RangeRequest{Key: []byte("k")}); err != nil {
		t.Fatal(err)
	}
}

// A group holds the writes of other packages (ApplyOther) and lease-style
// revocations (ApplyWith) in the same batch as its key-value entries: none
// is visible before Commit, all are after, and a compaction commits what
// the group holds before it.
func TestGroupHoldsEveryKindOfEntry(t *testing.T) {
	h := newHarness(t, Options{})
	h.put("k", "v")
	g, err := h.s.NewGroup()
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	i := h.idx
	if err := g.ApplyOther(i+1, 1, func(b *pebble.Batch) error { return b.Set([]byte{0x30, 1}, []byte("lease"), nil) }); err != nil {
		t.Fatal(err)
	}
	del := &pb.InternalRaftRequest{DeleteRange: &pb.DeleteRangeRequest{Key: []byte("k")}}
	res, err := g.ApplyWith(i+2, 1, del, func(b *pebble.Batch) error { return b.Delete([]byte{0x30, 1}, nil) })
	if err != nil || len(res.Events) != 1 {
		t.Fatalf("ApplyWith: %v, events %v", err, res.Events)
	}
	g.Skip(i+3, 1)
	if a, _ := h.s.Applied(); a != i || h.get("k") == nil {
		t.Fatalf("before Commit: applied %d, k=%v", a, h.get("k"))
	}
	cres, err := g.Apply(i+4, 1, &pb.InternalRaftRequest{Compaction: &pb.CompactionRequest{Revision: h.s.Rev()}})
	if err != nil || cres.Err != nil {
		t.Fatalf("compaction in a group: %v %v", err, cres.Err)
	}
	if a, _ := h.s.Applied(); a != i+4 || h.get("k") != nil {
		t.Fatalf("after the compaction: applied %d, k=%v", a, h.get("k"))
	}
	waitClosed(t, cres.Compacted, "compaction")
	if err := g.ApplyOther(i+5, 1, func(b *pebble.Batch) error { return b.Set([]byte{0x10}, nil, nil) }); !errors.Is(err, ErrForeignWrite) {
		t.Fatalf("a foreign write: %v", err)
	}
	if err := g.Commit(); !errors.Is(err, ErrForeignWrite) {
		t.Fatalf("Commit after a failed entry: %v", err)
	}
	if a, _ := h.s.Applied(); a != i+4 {
		t.Fatalf("applied %d after a failed group, want %d", a, i+4)
	}
}
