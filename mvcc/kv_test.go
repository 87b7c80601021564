package mvcc

import (
	"bytes"
	"context"
	"errors"
	"math/rand"
	"sort"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

func TestNewStore(t *testing.T) {
	h := newHarness(t, Options{})
	if h.s.Rev() != 1 || h.s.CompactRev() != -1 {
		t.Fatalf("new store rev %d compact %d, want 1 -1", h.s.Rev(), h.s.CompactRev())
	}
	if i, tm := h.s.Applied(); i != 0 || tm != 0 {
		t.Fatalf("applied (%d,%d), want (0,0)", i, tm)
	}
	resp := h.rng(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
	equalMsg(t, "empty range", resp, &pb.RangeResponse{Header: &pb.ResponseHeader{Revision: 1}})
}

// TestRevisionsAndVersions walks put/overwrite/delete/re-put and checks
// every revision, create/mod revision and version, including history.
func TestRevisionsAndVersions(t *testing.T) {
	h := newHarness(t, Options{})
	steps := []struct {
		op      func() int64 // returns the response header revision
		wantRev int64
		key     string
		want    *mvccpb.KeyValue
	}{
		{func() int64 { return h.put("a", "1").Header.Revision }, 2, "a", kv("a", "1", 2, 2, 1)},
		{func() int64 { return h.put("a", "2").Header.Revision }, 3, "a", kv("a", "2", 2, 3, 2)},
		{func() int64 { return h.put("b", "1").Header.Revision }, 4, "b", kv("b", "1", 4, 4, 1)},
		{func() int64 { return h.del("a", "").Header.Revision }, 5, "a", nil},
		{func() int64 { return h.del("a", "").Header.Revision }, 5, "a", nil}, // nothing deleted: no new revision
		{func() int64 { return h.del("zz", "zzz").Header.Revision }, 5, "zz", nil},
		{func() int64 { return h.put("a", "3").Header.Revision }, 6, "a", kv("a", "3", 6, 6, 1)},
		{func() int64 { return h.put("a", "4").Header.Revision }, 7, "a", kv("a", "4", 6, 7, 2)},
		{func() int64 { return h.put("b", "2").Header.Revision }, 8, "b", kv("b", "2", 4, 8, 2)},
	}
	for i, st := range steps {
		if got := st.op(); got != st.wantRev {
			t.Fatalf("step %d: header revision %d, want %d", i, got, st.wantRev)
		}
		if h.s.Rev() != st.wantRev {
			t.Fatalf("step %d: Rev %d, want %d", i, h.s.Rev(), st.wantRev)
		}
		got := h.get(st.key)
		if st.want == nil && got != nil || st.want != nil && got == nil {
			t.Fatalf("step %d: get %q = %v, want %v", i, st.key, got, st.want)
		}
		if st.want != nil {
			equalMsg(t, "kv", got, st.want)
		}
	}
	history := []struct {
		rev  int64
		want *mvccpb.KeyValue
	}{
		{1, nil}, {2, kv("a", "1", 2, 2, 1)}, {3, kv("a", "2", 2, 3, 2)}, {4, kv("a", "2", 2, 3, 2)},
		{5, nil}, {6, kv("a", "3", 6, 6, 1)}, {7, kv("a", "4", 6, 7, 2)}, {8, kv("a", "4", 6, 7, 2)},
	}
	for _, hc := range history {
		resp := h.rng(&pb.RangeRequest{Key: []byte("a"), Revision: hc.rev})
		if resp.Header.Revision != 8 {
			t.Fatalf("rev %d: header revision %d, want current 8", hc.rev, resp.Header.Revision)
		}
		want := &pb.RangeResponse{Header: &pb.ResponseHeader{Revision: 8}}
		if hc.want != nil {
			want.Kvs, want.Count = []*mvccpb.KeyValue{hc.want}, 1
		}
		equalMsg(t, "historical get", resp, want)
	}
}

func TestPutOptions(t *testing.T) {
	leases := map[int64]bool{7: true, 8: true}
	h := newHarness(t, Options{LeaseExists: func(id int64) bool { return leases[id] }})
	put := func(p *pb.PutRequest) Result { return h.apply(&pb.InternalRaftRequest{Put: p}) }

	res := put(&pb.PutRequest{Key: []byte("k"), Value: []byte("v1"), Lease: 7, PrevKv: true})
	equalMsg(t, "first put", res.Resp, &pb.PutResponse{Header: &pb.ResponseHeader{Revision: 2}})
	res = put(&pb.PutRequest{Key: []byte("k"), Value: []byte("v2"), PrevKv: true})
	prev := kv("k", "v1", 2, 2, 1)
	prev.Lease = 7
	equalMsg(t, "prev_kv", res.Resp, &pb.PutResponse{Header: &pb.ResponseHeader{Revision: 3}, PrevKv: prev})

	res = put(&pb.PutRequest{Key: []byte("k"), Lease: 8, IgnoreValue: true})
	want := kv("k", "v2", 2, 4, 3)
	want.Lease = 8
	equalMsg(t, "ignore_value keeps value", h.get("k"), want)

	put(&pb.PutRequest{Key: []byte("k"), Value: []byte("v3"), IgnoreLease: true})
	want = kv("k", "v3", 2, 5, 4)
	want.Lease = 8
	equalMsg(t, "ignore_lease keeps lease", h.get("k"), want)

	for name, p := range map[string]*pb.PutRequest{
		"ignore_value missing": {Key: []byte("missing"), IgnoreValue: true},
		"ignore_lease missing": {Key: []byte("missing"), Value: []byte("x"), IgnoreLease: true},
	} {
		res := put(p)
		wantErr(t, res.Err, ErrKeyNotFound)
		if res.Resp != nil || h.s.Rev() != 5 {
			t.Fatalf("%s: resp %v rev %d, want nil and 5", name, res.Resp, h.s.Rev())
		}
	}
	res = put(&pb.PutRequest{Key: []byte("k"), Value: []byte("x"), Lease: 99})
	wantErr(t, res.Err, ErrLeaseNotFound)
	// The lease is checked before the key: both wrong reports the lease.
	res = put(&pb.PutRequest{Key: []byte("missing"), Lease: 99, IgnoreValue: true})
	wantErr(t, res.Err, ErrLeaseNotFound)
	if h.s.Rev() != 5 {
		t.Fatalf("rev %d after failed puts, want 5", h.s.Rev())
	}

	// No LeaseExists: every lease is unknown.
	h2 := newHarness(t, Options{})
	wantErr(t, h2.apply(&pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte("k"), Lease: 1}}).Err, ErrLeaseNotFound)
}

func TestDeleteRange(t *testing.T) {
	h := newHarness(t, Options{})
	for _, k := range []string{"a", "b", "c", "d"} {
		h.put(k, "v"+k)
	} // a@2 b@3 c@4 d@5
	res := h.mustOK(&pb.InternalRaftRequest{DeleteRange: &pb.DeleteRangeRequest{Key: []byte("b"), RangeEnd: []byte("d"), PrevKv: true}})
	equalMsg(t, "delete [b,d) prev_kv", res.Resp, &pb.DeleteRangeResponse{
		Header: &pb.ResponseHeader{Revision: 6}, Deleted: 2,
		PrevKvs: []*mvccpb.KeyValue{kv("b", "vb", 3, 3, 1), kv("c", "vc", 4, 4, 1)},
	})
	wantEvents(t, res.Events, []*mvccpb.Event{
		{Type: mvccpb.Event_DELETE, Kv: &mvccpb.KeyValue{Key: []byte("b"), ModRevision: 6}},
		{Type: mvccpb.Event_DELETE, Kv: &mvccpb.KeyValue{Key: []byte("c"), ModRevision: 6}},
	})
	res = h.mustOK(&pb.InternalRaftRequest{DeleteRange: &pb.DeleteRangeRequest{Key: []byte("b"), RangeEnd: []byte("d"), PrevKv: true}})
	equalMsg(t, "delete nothing", res.Resp, &pb.DeleteRangeResponse{Header: &pb.ResponseHeader{Revision: 6}})
	equalMsg(t, "delete all from a", h.del("a", "\x00"), &pb.DeleteRangeResponse{Header: &pb.ResponseHeader{Revision: 7}, Deleted: 2})
	if got := h.rng(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}}); len(got.Kvs) != 0 {
		t.Fatalf("keys left: %v", got.Kvs)
	}
	// History still readable.
	if got := h.rng(&pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("e"), Revision: 5}); got.Count != 4 {
		t.Fatalf("count at rev 5 = %d, want 4", got.Count)
	}
}

func wantEvents(t *testing.T, got, want []*mvccpb.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d events, want %d: %v", len(got), len(want), got)
	}
	for i := range got {
		equalMsg(t, "event", got[i], want[i])
	}
}

// rangeFixture: keys with distinct histories so every sort target differs.
//
//	rev2 put a=z   rev3 put b=y   rev4 put c=x   rev5 put a=w (a v2)
//	rev6 put d=y   rev7 del b     rev8 put e=v   rev9 put c=u (c v2)  rev10 put c=t (c v3)
func rangeFixture(t *testing.T) *harness {
	h := newHarness(t, Options{})
	h.put("a", "z")
	h.put("b", "y")
	h.put("c", "x")
	h.put("a", "w")
	h.put("d", "y")
	h.del("b", "")
	h.put("e", "v")
	h.put("c", "u")
	h.put("c", "t")
	return h
}

func keysOf(kvs []*mvccpb.KeyValue) string {
	var b bytes.Buffer
	for _, kv := range kvs {
		b.Write(kv.Key)
	}
	return b.String()
}

func TestRangeOptions(t *testing.T) {
	h := rangeFixture(t)
	type tc struct {
		name      string
		req       *pb.RangeRequest
		keys      string
		count     int64
		more      bool
		noValues  bool
		noLeaseOK bool
	}
	r := func(key, end string) *pb.RangeRequest { return &pb.RangeRequest{Key: []byte(key), RangeEnd: bs(end)} }
	with := func(req *pb.RangeRequest, f func(*pb.RangeRequest)) *pb.RangeRequest { f(req); return req }
	cases := []tc{
		{name: "single", req: r("c", ""), keys: "c", count: 1},
		{name: "single missing", req: r("b", ""), keys: "", count: 0},
		{name: "range", req: r("a", "d"), keys: "ac", count: 2},
		{name: "from key", req: r("c", "\x00"), keys: "cde", count: 3},
		{name: "all", req: r("\x00", "\x00"), keys: "acde", count: 4},
		{name: "end before key", req: r("d", "a"), keys: "", count: 0},
		{name: "limit", req: with(r("a", "\x00"), func(q *pb.RangeRequest) { q.Limit = 2 }), keys: "ac", count: 4, more: true},
		{name: "limit exact", req: with(r("a", "\x00"), func(q *pb.RangeRequest) { q.Limit = 4 }), keys: "acde", count: 4},
		{name: "limit negative", req: with(r("a", "\x00"), func(q *pb.RangeRequest) { q.Limit = -1 }), keys: "acde", count: 4},
		{name: "count only", req: with(r("a", "\x00"), func(q *pb.RangeRequest) { q.CountOnly = true; q.Limit = 1 }), keys: "", count: 4},
		{name: "keys only", req: with(r("a", "\x00"), func(q *pb.RangeRequest) { q.KeysOnly = true }), keys: "acde", count: 4, noValues: true},
		{name: "rev 4", req: with(r("a", "\x00"), func(q *pb.RangeRequest) { q.Revision = 4 }), keys: "abc", count: 3},
		{name: "rev 6 limit", req: with(r("a", "\x00"), func(q *pb.RangeRequest) { q.Revision = 6; q.Limit = 3 }), keys: "abc", count: 4, more: true},
		{name: "min mod", req: with(r("a", "\x00"), func(q *pb.RangeRequest) { q.MinModRevision = 6 }), keys: "cde", count: 4},
		{name: "max mod", req: with(r("a", "\x00"), func(q *pb.RangeRequest) { q.MaxModRevision = 6 }), keys: "ad", count: 4},
		{name: "min create", req: with(r("a", "\x00"), func(q *pb.RangeRequest) { q.MinCreateRevision = 4 }), keys: "cde", count: 4},
		{name: "max create", req: with(r("a", "\x00"), func(q *pb.RangeRequest) { q.MaxCreateRevision = 4 }), keys: "ac", count: 4},
		{name: "filters+limit", req: with(r("a", "\x00"), func(q *pb.RangeRequest) { q.MinCreateRevision = 3; q.Limit = 1 }), keys: "c", count: 4, more: true},
		{name: "min+max mod", req: with(r("a", "\x00"), func(q *pb.RangeRequest) { q.MinModRevision = 5; q.MaxModRevision = 8 }), keys: "ade", count: 4},
		{name: "sort key desc", req: with(r("a", "\x00"), func(q *pb.RangeRequest) { q.SortOrder = pb.RangeRequest_DESCEND }), keys: "edca", count: 4},
		{name: "sort key asc limit", req: with(r("a", "\x00"), func(q *pb.RangeRequest) { q.SortOrder = pb.RangeRequest_ASCEND; q.Limit = 3 }), keys: "acd", count: 4, more: true},
		{name: "sort key desc limit", req: with(r("a", "\x00"), func(q *pb.RangeRequest) { q.SortOrder = pb.RangeRequest_DESCEND; q.Limit = 2 }), keys: "ed", count: 4, more: true},
		{name: "sort version none=asc", req: with(r("a", "\x00"), func(q *pb.RangeRequest) { q.SortTarget = pb.RangeRequest_VERSION }), keys: "deac", count: 4},
		{name: "sort create desc", req: with(r("a", "\x00"), func(q *pb.RangeRequest) {
			q.SortTarget, q.SortOrder = pb.RangeRequest_CREATE, pb.RangeRequest_DESCEND
		}), keys: "edca", count: 4},
		{name: "sort mod asc", req: with(r("a", "\x00"), func(q *pb.RangeRequest) {
			q.SortTarget, q.SortOrder = pb.RangeRequest_MOD, pb.RangeRequest_ASCEND
		}), keys: "adec", count: 4},
		{name: "sort mod desc limit", req: with(r("a", "\x00"), func(q *pb.RangeRequest) {
			q.SortTarget, q.SortOrder, q.Limit = pb.RangeRequest_MOD, pb.RangeRequest_DESCEND, 2
		}), keys: "ce", count: 4, more: true},
		{name: "sort value asc", req: with(r("a", "\x00"), func(q *pb.RangeRequest) {
			q.SortTarget, q.SortOrder = pb.RangeRequest_VALUE, pb.RangeRequest_ASCEND
		}), keys: "cead", count: 4},
		{name: "sort value keys only", req: with(r("a", "\x00"), func(q *pb.RangeRequest) {
			q.SortTarget, q.SortOrder, q.KeysOnly = pb.RangeRequest_VALUE, pb.RangeRequest_DESCEND, true
		}), keys: "daec", count: 4, noValues: true},
		{name: "sort+filter+limit at rev", req: with(r("a", "\x00"), func(q *pb.RangeRequest) {
			q.SortTarget, q.SortOrder, q.Limit, q.Revision, q.MinModRevision = pb.RangeRequest_MOD, pb.RangeRequest_DESCEND, 1, 6, 3
		}), keys: "d", count: 4, more: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := h.rng(c.req)
			if got := keysOf(resp.Kvs); got != c.keys || resp.Count != c.count || resp.More != c.more {
				t.Fatalf("keys %q count %d more %v, want %q %d %v", got, resp.Count, resp.More, c.keys, c.count, c.more)
			}
			if resp.Header.Revision != 10 {
				t.Fatalf("header revision %d, want 10", resp.Header.Revision)
			}
			for _, kv := range resp.Kvs {
				if c.noValues != (kv.Value == nil) {
					t.Fatalf("value %q with keys_only=%v", kv.Value, c.noValues)
				}
				if kv.ModRevision == 0 || kv.CreateRevision == 0 || kv.Version == 0 {
					t.Fatalf("incomplete kv %v", kv)
				}
			}
		})
	}
}

// TestRangeKeysOnlyLease: etcd 3.7's keys_only path (no VALUE sort) serves
// from its index and leaves lease out; with a VALUE sort it reads the kv.
func TestRangeKeysOnlyLease(t *testing.T) {
	h := newHarness(t, Options{LeaseExists: func(int64) bool { return true }})
	h.mustOK(&pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte("k"), Value: []byte("v"), Lease: 5}})
	resp := h.rng(&pb.RangeRequest{Key: []byte("k"), KeysOnly: true})
	equalMsg(t, "keys_only", resp.Kvs[0], &mvccpb.KeyValue{Key: []byte("k"), CreateRevision: 2, ModRevision: 2, Version: 1})
	resp = h.rng(&pb.RangeRequest{Key: []byte("k"), KeysOnly: true, SortTarget: pb.RangeRequest_VALUE})
	equalMsg(t, "keys_only value sort", resp.Kvs[0], &mvccpb.KeyValue{Key: []byte("k"), CreateRevision: 2, ModRevision: 2, Version: 1, Lease: 5})
	resp = h.rng(&pb.RangeRequest{Key: []byte("k")})
	equalMsg(t, "full", resp.Kvs[0], &mvccpb.KeyValue{Key: []byte("k"), Value: []byte("v"), CreateRevision: 2, ModRevision: 2, Version: 1, Lease: 5})
}

// etcdOrder sorts kvs the way etcd's applier does, written independently
// from its source: sort.Sort with a Less on the target only.
type etcdOrder struct {
	kvs  []*mvccpb.KeyValue
	less func(a, b *mvccpb.KeyValue) bool
}

func (e etcdOrder) Len() int           { return len(e.kvs) }
func (e etcdOrder) Swap(i, j int)      { e.kvs[i], e.kvs[j] = e.kvs[j], e.kvs[i] }
func (e etcdOrder) Less(i, j int) bool { return e.less(e.kvs[i], e.kvs[j]) }

// TestRangeSortTies: many ties (more than insertion-sort size) must come out
// in the exact unstable order of sort.Sort over key-ordered input.
func TestRangeSortTies(t *testing.T) {
	h := newHarness(t, Options{})
	rnd := rand.New(rand.NewSource(1))
	for i := 0; i < 60; i++ {
		k := string(rune('A'+i%26)) + string(rune('a'+i/26))
		for n := rnd.Intn(3); n >= 0; n-- {
			h.put(k, string(rune('0'+rnd.Intn(3))))
		}
	}
	all := h.rng(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}}).Kvs
	targets := map[pb.RangeRequest_SortTarget]func(a, b *mvccpb.KeyValue) bool{
		pb.RangeRequest_VERSION: func(a, b *mvccpb.KeyValue) bool { return a.Version < b.Version },
		pb.RangeRequest_VALUE:   func(a, b *mvccpb.KeyValue) bool { return bytes.Compare(a.Value, b.Value) < 0 },
		pb.RangeRequest_CREATE:  func(a, b *mvccpb.KeyValue) bool { return a.CreateRevision < b.CreateRevision },
	}
	unstable := false
	for target, less := range targets {
		for _, order := range []pb.RangeRequest_SortOrder{pb.RangeRequest_ASCEND, pb.RangeRequest_DESCEND} {
			full := append([]*mvccpb.KeyValue(nil), all...)
			if order == pb.RangeRequest_ASCEND {
				sort.Sort(etcdOrder{full, less})
			} else {
				sort.Sort(sort.Reverse(etcdOrder{full, less}))
			}
			if keysOf(full) != keysOf(stableOrder(all, less, order)) {
				unstable = true
			}
			for _, limit := range []int64{0, 7} {
				want := full
				if limit > 0 {
					want = want[:limit]
				}
				got := h.rng(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, SortTarget: target, SortOrder: order, Limit: limit})
				if keysOf(got.Kvs) != keysOf(want) {
					t.Fatalf("%v %v limit %d:\n got  %s\n want %s", target, order, limit, keysOf(got.Kvs), keysOf(want))
				}
			}
		}
	}
	if !unstable {
		t.Fatal("fixture never tells sort.Sort from a stable sort: the test would not catch sort.Stable")
	}
}

func stableOrder(all []*mvccpb.KeyValue, less func(a, b *mvccpb.KeyValue) bool, order pb.RangeRequest_SortOrder) []*mvccpb.KeyValue {
	s := append([]*mvccpb.KeyValue(nil), all...)
	if order == pb.RangeRequest_ASCEND {
		sort.Stable(etcdOrder{s, less})
	} else {
		sort.Stable(sort.Reverse(etcdOrder{s, less}))
	}
	return s
}

func TestRangeRevisionErrors(t *testing.T) {
	h := rangeFixture(t) // rev 10
	h.compact(5)
	for _, c := range []struct {
		rev  int64
		err  error
		keys string
	}{
		{11, ErrFutureRev, ""}, {4, ErrCompacted, ""}, {1, ErrCompacted, ""},
		{5, nil, "abc"}, {6, nil, "abcd"}, {10, nil, "acde"}, {0, nil, "acde"}, {-3, nil, "acde"},
	} {
		resp, err := h.s.Range(t.Context(), &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte{0}, Revision: c.rev})
		if c.err != nil {
			wantErr(t, err, c.err)
			continue
		}
		if err != nil || keysOf(resp.Kvs) != c.keys {
			t.Fatalf("rev %d: %v %v, want %q", c.rev, resp, err, c.keys)
		}
	}
}

func TestRangeContextCanceled(t *testing.T) {
	h := newHarness(t, Options{})
	for i := 0; i < 3*ctxCheckEvery; i++ {
		h.put(string(rune('a'+i/26))+string(rune('a'+i%26)), "v")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := h.s.Range(ctx, &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
	wantErr(t, err, ctx.Err())
}

// TestKeyEncodingOrder: enc preserves user key order, including 0x00/0xFF
// bytes, and the versions of a key never interleave with another key's.
func TestKeyEncodingOrder(t *testing.T) {
	rnd := rand.New(rand.NewSource(2))
	alphabet := []byte{0x00, 0x01, 0xFF, 'a'}
	var keys [][]byte
	for i := 0; i < 400; i++ {
		k := make([]byte, 1+rnd.Intn(4))
		for j := range k {
			k[j] = alphabet[rnd.Intn(len(alphabet))]
		}
		keys = append(keys, k)
	}
	for i := 0; i < len(keys)-1; i++ {
		a, b := keys[i], keys[i+1]
		want := bytes.Compare(a, b)
		if got := bytes.Compare(versionKey(a, 1), versionKey(b, 1<<40)); got != want && want != 0 {
			t.Fatalf("order of %x vs %x: %d, want %d", a, b, got, want)
		}
		if want == 0 {
			continue
		}
		pa := versionPrefix(a)
		if bytes.HasPrefix(versionPrefix(b), pa) {
			t.Fatalf("enc(%x) is a prefix of enc(%x)", a, b)
		}
	}
	// And a store round trip over such keys.
	h := newHarness(t, Options{})
	for _, k := range keys[:60] {
		h.mustOK(&pb.InternalRaftRequest{Put: &pb.PutRequest{Key: k, Value: k}})
	}
	got := h.rng(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}}).Kvs
	uniq := map[string]bool{}
	for _, k := range keys[:60] {
		uniq[string(k)] = true
	}
	var want []string
	for k := range uniq {
		want = append(want, k)
	}
	sort.Strings(want)
	if len(got) != len(want) {
		t.Fatalf("%d kvs, want %d", len(got), len(want))
	}
	for i := range got {
		if string(got[i].Key) != want[i] || !bytes.Equal(got[i].Value, got[i].Key) {
			t.Fatalf("kv %d = %x, want key %x", i, got[i].Key, want[i])
		}
	}
}

// TestDirectViewRefusesMovedCompaction: a Range's view whose compaction
// revision moved before its iterator opened is refused (and Range retries),
// so a read never runs on an iterator that may lack versions it must see.
func TestDirectViewRefusesMovedCompaction(t *testing.T) {
	h := newHarness(t, Options{})
	h.put("a", "1")
	h.put("a", "2")
	h.put("a", "3")
	v := &directView{s: h.s, compactRev: h.s.compactRev.Load(), rev: h.s.rev.Load()}
	h.compact(3)
	if _, err := v.NewIter(&pebble.IterOptions{}); !errors.Is(err, errViewMoved) {
		t.Fatalf("NewIter after a compaction was scheduled: err = %v, want errViewMoved", err)
	}
	fresh := &directView{s: h.s, compactRev: h.s.compactRev.Load(), rev: h.s.rev.Load()}
	it, err := fresh.NewIter(&pebble.IterOptions{})
	if err != nil {
		t.Fatalf("NewIter on a current view: %v", err)
	}
	_ = it.Close()
	if _, err := fresh.NewIter(&pebble.IterOptions{}); err == nil {
		t.Fatal("a directView opened a second iterator")
	}
	if got := h.get("a"); string(got.Value) != "3" {
		t.Fatalf("get a = %q, want 3", got.Value)
	}
}
