package mvcc

import (
	"fmt"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

func cmp(key, end string, target pb.Compare_CompareTarget, result pb.Compare_CompareResult, operand any) *pb.Compare {
	c := &pb.Compare{Key: []byte(key), RangeEnd: bs(end), Target: target, Result: result}
	switch target {
	case pb.Compare_VALUE:
		c.TargetUnion = &pb.Compare_Value{Value: []byte(operand.(string))}
	case pb.Compare_VERSION:
		c.TargetUnion = &pb.Compare_Version{Version: int64(operand.(int))}
	case pb.Compare_CREATE:
		c.TargetUnion = &pb.Compare_CreateRevision{CreateRevision: int64(operand.(int))}
	case pb.Compare_MOD:
		c.TargetUnion = &pb.Compare_ModRevision{ModRevision: int64(operand.(int))}
	case pb.Compare_LEASE:
		c.TargetUnion = &pb.Compare_Lease{Lease: int64(operand.(int))}
	}
	return c
}

var allResults = []pb.Compare_CompareResult{pb.Compare_EQUAL, pb.Compare_GREATER, pb.Compare_LESS, pb.Compare_NOT_EQUAL}

// holds is what a compare result means for sign(stored - operand).
func holds(res pb.Compare_CompareResult, sign int) bool {
	switch res {
	case pb.Compare_EQUAL:
		return sign == 0
	case pb.Compare_GREATER:
		return sign > 0
	case pb.Compare_LESS:
		return sign < 0
	}
	return sign != 0
}

func (h *harness) compareHolds(cmps ...*pb.Compare) bool {
	h.t.Helper()
	resp, err := h.s.ReadTxn(h.t.(*testing.T).Context(), &pb.TxnRequest{Compare: cmps})
	if err != nil {
		h.t.Fatalf("ReadTxn: %v", err)
	}
	return resp.Succeeded
}

func TestTxnCompareMatrix(t *testing.T) {
	h := newHarness(t, Options{LeaseExists: func(int64) bool { return true }})
	h.put("k", "a")                                                                                        // rev 2
	h.mustOK(&pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte("k"), Value: []byte("b"), Lease: 5}}) // rev 3: create 2 mod 3 version 2 lease 5
	stored := map[pb.Compare_CompareTarget]int{pb.Compare_VERSION: 2, pb.Compare_CREATE: 2, pb.Compare_MOD: 3, pb.Compare_LEASE: 5}
	for target, v := range stored {
		for _, res := range allResults {
			for sign, operand := range map[int]int{1: v - 1, 0: v, -1: v + 1} {
				if got, want := h.compareHolds(cmp("k", "", target, res, operand)), holds(res, sign); got != want {
					t.Errorf("%v %v %d on %d: %v, want %v", target, res, operand, v, got, want)
				}
				// A missing key compares as the zero KeyValue.
				zsign := map[bool]int{true: 0, false: -1}[operand == 0]
				if operand < 0 {
					zsign = 1
				}
				if got, want := h.compareHolds(cmp("missing", "", target, res, operand)), holds(res, zsign); got != want {
					t.Errorf("missing: %v %v %d: %v, want %v", target, res, operand, got, want)
				}
			}
		}
	}
	for _, res := range allResults {
		for sign, operand := range map[int]string{1: "a", 0: "b", -1: "c"} {
			if got, want := h.compareHolds(cmp("k", "", pb.Compare_VALUE, res, operand)), holds(res, sign); got != want {
				t.Errorf("VALUE %v %q: %v, want %v", res, operand, got, want)
			}
			if h.compareHolds(cmp("missing", "", pb.Compare_VALUE, res, operand)) {
				t.Errorf("VALUE %v %q on a missing key holds; it must always fail", res, operand)
			}
		}
		if h.compareHolds(cmp("missing", "", pb.Compare_VALUE, res, "")) {
			t.Errorf("VALUE %v \"\" on a missing key holds", res)
		}
	}
}

func TestTxnRangeCompare(t *testing.T) {
	h := newHarness(t, Options{})
	h.put("k1", "x")
	h.put("k2", "x")
	h.put("k2", "y") // k1 version 1, k2 version 2
	cases := []struct {
		c    *pb.Compare
		want bool
	}{
		{cmp("k1", "k3", pb.Compare_VERSION, pb.Compare_GREATER, 0), true},
		{cmp("k1", "k3", pb.Compare_VERSION, pb.Compare_EQUAL, 1), false}, // k2 fails
		{cmp("k1", "k3", pb.Compare_VERSION, pb.Compare_LESS, 3), true},
		{cmp("k1", "k2", pb.Compare_VERSION, pb.Compare_EQUAL, 1), true},
		{cmp("k1", "\x00", pb.Compare_VALUE, pb.Compare_NOT_EQUAL, "z"), true},
		{cmp("k1", "\x00", pb.Compare_VALUE, pb.Compare_EQUAL, "x"), false},
		{cmp("x", "y", pb.Compare_VERSION, pb.Compare_EQUAL, 0), true}, // empty range: zero kv
		{cmp("x", "y", pb.Compare_VALUE, pb.Compare_EQUAL, ""), false},
		{cmp("x", "y", pb.Compare_CREATE, pb.Compare_GREATER, 0), false},
	}
	for i, c := range cases {
		if got := h.compareHolds(c.c); got != c.want {
			t.Errorf("case %d %v: %v, want %v", i, c.c, got, c.want)
		}
	}
	if !h.compareHolds(cases[0].c, cases[2].c) || h.compareHolds(cases[0].c, cases[1].c) {
		t.Error("multiple compares must all hold")
	}
}

// TestTxnNested: nested compares are decided before the outer txn runs;
// reads see the txn's earlier writes; headers as etcd fills them.
func TestTxnNested(t *testing.T) {
	h := newHarness(t, Options{})
	h.put("k", "b") // rev 2
	inner := &pb.TxnRequest{
		Compare: []*pb.Compare{cmp("x", "", pb.Compare_VERSION, pb.Compare_EQUAL, 0)}, // true before the txn
		Success: []*pb.RequestOp{rangeOp(&pb.RangeRequest{Key: []byte("x")}), putOp("y", "2")},
		Failure: []*pb.RequestOp{putOp("wrong", "1")},
	}
	resp, err := h.txn(&pb.TxnRequest{
		Compare: []*pb.Compare{cmp("k", "", pb.Compare_VALUE, pb.Compare_EQUAL, "b")},
		Success: []*pb.RequestOp{
			rangeOp(&pb.RangeRequest{Key: []byte("x")}), putOp("x", "1"), txnOp(inner),
			rangeOp(&pb.RangeRequest{Key: []byte("x"), RangeEnd: []byte("z")}),
			delOp("nothing", "", false), delOp("k", "", true),
		},
		Failure: []*pb.RequestOp{putOp("wrong", "1")},
	})
	if err != nil {
		t.Fatal(err)
	}
	rr := func(rev int64, count int64, kvs ...*mvccpb.KeyValue) *pb.ResponseOp {
		return &pb.ResponseOp{Response: &pb.ResponseOp_ResponseRange{ResponseRange: &pb.RangeResponse{Header: &pb.ResponseHeader{Revision: rev}, Kvs: kvs, Count: count}}}
	}
	pr := &pb.ResponseOp{Response: &pb.ResponseOp_ResponsePut{ResponsePut: &pb.PutResponse{Header: &pb.ResponseHeader{Revision: 3}}}}
	dr := func(n int64, prev ...*mvccpb.KeyValue) *pb.ResponseOp {
		return &pb.ResponseOp{Response: &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: &pb.DeleteRangeResponse{Header: &pb.ResponseHeader{Revision: 3}, Deleted: n, PrevKvs: prev}}}
	}
	want := &pb.TxnResponse{Header: &pb.ResponseHeader{Revision: 3}, Succeeded: true, Responses: []*pb.ResponseOp{
		rr(2, 0), pr,
		{Response: &pb.ResponseOp_ResponseTxn{ResponseTxn: &pb.TxnResponse{Header: &pb.ResponseHeader{}, Succeeded: true, Responses: []*pb.ResponseOp{
			rr(3, 1, kv("x", "1", 3, 3, 1)), pr,
		}}}},
		rr(3, 2, kv("x", "1", 3, 3, 1), kv("y", "2", 3, 3, 1)),
		dr(0), dr(1, kv("k", "b", 2, 2, 1)),
	}}
	equalMsg(t, "nested txn", resp, want)
	if h.s.Rev() != 3 {
		t.Fatalf("rev %d, want 3: a txn is one revision", h.s.Rev())
	}
	evs, err := h.s.Events(3, 0)
	if err != nil {
		t.Fatal(err)
	}
	wantEvents(t, evs, []*mvccpb.Event{
		{Type: mvccpb.Event_PUT, Kv: kv("x", "1", 3, 3, 1)},
		{Type: mvccpb.Event_PUT, Kv: kv("y", "2", 3, 3, 1)},
		{Type: mvccpb.Event_DELETE, Kv: &mvccpb.KeyValue{Key: []byte("k"), ModRevision: 3}},
	})
}

func TestTxnHeaders(t *testing.T) {
	h := newHarness(t, Options{})
	h.put("a", "1") // rev 2
	// Read-only txn through raft: no new revision.
	resp, err := h.txn(&pb.TxnRequest{Success: []*pb.RequestOp{rangeOp(&pb.RangeRequest{Key: []byte("a")})}})
	if err != nil || resp.Header.Revision != 2 || h.s.Rev() != 2 {
		t.Fatalf("read-only txn: %v %v rev %d", resp, err, h.s.Rev())
	}
	// A delete that deletes nothing writes nothing.
	resp, err = h.txn(&pb.TxnRequest{Success: []*pb.RequestOp{delOp("zz", "", false)}})
	if err != nil || resp.Header.Revision != 2 || h.s.Rev() != 2 {
		t.Fatalf("empty delete txn: %v %v rev %d", resp, err, h.s.Rev())
	}
	if got := resp.Responses[0].GetResponseDeleteRange().Header.Revision; got != 2 {
		t.Fatalf("empty delete header %d, want 2", got)
	}
	// Failure branch with no ops.
	resp, err = h.txn(&pb.TxnRequest{Compare: []*pb.Compare{cmp("a", "", pb.Compare_VALUE, pb.Compare_EQUAL, "no")}, Success: []*pb.RequestOp{putOp("a", "2")}})
	equalMsg(t, "failed empty", resp, &pb.TxnResponse{Header: &pb.ResponseHeader{Revision: 2}, Responses: []*pb.ResponseOp{}})
	if err != nil || h.s.Rev() != 2 {
		t.Fatal(err)
	}
}

func TestTxnRequestErrors(t *testing.T) {
	h := newHarness(t, Options{LeaseExists: func(id int64) bool { return id == 1 }})
	h.put("a", "1")
	h.put("b", "1") // rev 3
	h.compact(2)
	leasePut := &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("c"), Lease: 9}}}
	ignorePut := &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("new"), IgnoreValue: true}}}
	cases := []struct {
		name string
		rt   *pb.TxnRequest
		err  error
	}{
		{"future range", &pb.TxnRequest{Success: []*pb.RequestOp{putOp("x", "1"), rangeOp(&pb.RangeRequest{Key: []byte("a"), Revision: 4})}}, ErrFutureRev},
		{"compacted range", &pb.TxnRequest{Success: []*pb.RequestOp{putOp("x", "1"), rangeOp(&pb.RangeRequest{Key: []byte("a"), Revision: 1})}}, ErrCompacted},
		{"lease", &pb.TxnRequest{Success: []*pb.RequestOp{putOp("x", "1"), leasePut}}, ErrLeaseNotFound},
		{"nested lease", &pb.TxnRequest{Success: []*pb.RequestOp{putOp("x", "1"), txnOp(&pb.TxnRequest{Success: []*pb.RequestOp{leasePut}})}}, ErrLeaseNotFound},
		// Checked against the state before the txn, as etcd's checkTxn.
		{"ignore_value on key created by the txn", &pb.TxnRequest{Success: []*pb.RequestOp{putOp("new", "1"), ignorePut}}, ErrKeyNotFound},
		{"failure branch", &pb.TxnRequest{Compare: []*pb.Compare{cmp("a", "", pb.Compare_VERSION, pb.Compare_EQUAL, 9)}, Failure: []*pb.RequestOp{putOp("x", "1"), leasePut}}, ErrLeaseNotFound},
	}
	for _, c := range cases {
		hash := h.hash(0)
		res := h.apply(&pb.InternalRaftRequest{Txn: c.rt})
		wantErr(t, res.Err, c.err)
		if res.Resp != nil || len(res.Events) != 0 || h.s.Rev() != 3 || h.hash(0) != hash {
			t.Fatalf("%s: wrote something: resp %v events %v rev %d", c.name, res.Resp, res.Events, h.s.Rev())
		}
	}
	// The same bad ops in the branch not taken are not checked.
	resp, err := h.txn(&pb.TxnRequest{Success: []*pb.RequestOp{putOp("x", "1")}, Failure: []*pb.RequestOp{leasePut, ignorePut}})
	if err != nil || !resp.Succeeded || h.s.Rev() != 4 {
		t.Fatalf("untaken branch: %v %v", resp, err)
	}
	// Historical range inside a txn at exactly the compaction revision.
	resp, err = h.txn(&pb.TxnRequest{Success: []*pb.RequestOp{rangeOp(&pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("c"), Revision: 2})}})
	if err != nil || keysOf(resp.Responses[0].GetResponseRange().Kvs) != "a" {
		t.Fatalf("range at compactRev: %v %v", resp, err)
	}
}

func TestReadTxn(t *testing.T) {
	h := newHarness(t, Options{})
	h.put("a", "1")
	ro := &pb.TxnRequest{
		Compare: []*pb.Compare{cmp("a", "", pb.Compare_VALUE, pb.Compare_EQUAL, "1")},
		Success: []*pb.RequestOp{rangeOp(&pb.RangeRequest{Key: []byte("a")}), txnOp(&pb.TxnRequest{Success: []*pb.RequestOp{rangeOp(&pb.RangeRequest{Key: []byte("b")})}})},
	}
	resp, err := h.s.ReadTxn(t.Context(), ro)
	if err != nil || !resp.Succeeded || resp.Header.Revision != 2 || len(resp.Responses[0].GetResponseRange().Kvs) != 1 {
		t.Fatalf("ReadTxn: %v %v", resp, err)
	}
	for i, rt := range []*pb.TxnRequest{
		{Success: []*pb.RequestOp{putOp("a", "2")}},
		{Failure: []*pb.RequestOp{delOp("a", "", false)}},
		{Success: []*pb.RequestOp{txnOp(&pb.TxnRequest{Failure: []*pb.RequestOp{putOp("a", "2")}})}},
	} {
		if _, err := h.s.ReadTxn(t.Context(), rt); err != ErrTxnNotReadOnly {
			t.Fatalf("case %d: %v, want ErrTxnNotReadOnly", i, err)
		}
	}
	_, err = h.s.ReadTxn(t.Context(), &pb.TxnRequest{Success: []*pb.RequestOp{rangeOp(&pb.RangeRequest{Key: []byte("a"), Revision: 9})}})
	wantErr(t, err, ErrFutureRev)
}

// TestTxnSameKeyTwice: the API edge forbids it; the store still stays
// consistent (last write of the revision wins, versions continue).
func TestTxnSameKeyTwice(t *testing.T) {
	h := newHarness(t, Options{})
	h.put("a", "0") // rev 2
	if _, err := h.txn(&pb.TxnRequest{Success: []*pb.RequestOp{putOp("a", "1"), putOp("a", "2")}}); err != nil {
		t.Fatal(err)
	}
	equalMsg(t, "put twice", h.get("a"), kv("a", "2", 2, 3, 3))
	if _, err := h.txn(&pb.TxnRequest{Success: []*pb.RequestOp{delOp("a", "", false), putOp("a", "3")}}); err != nil {
		t.Fatal(err)
	}
	equalMsg(t, "delete then put", h.get("a"), kv("a", "3", 4, 4, 1))
	if _, err := h.txn(&pb.TxnRequest{Success: []*pb.RequestOp{putOp("a", "4"), delOp("a", "", false)}}); err != nil {
		t.Fatal(err)
	}
	if got := h.get("a"); got != nil {
		t.Fatalf("put then delete: %v", got)
	}
	evs, err := h.s.Events(5, 0)
	if err != nil || len(evs) != 1 || evs[0].Type != mvccpb.Event_DELETE {
		t.Fatalf("events %v %v", evs, err)
	}
}

func TestEvents(t *testing.T) {
	h := newHarness(t, Options{})
	var all []*mvccpb.Event
	for i := 0; i < 5; i++ {
		all = append(all, h.mustOK(&pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte(fmt.Sprint("k", i)), Value: []byte("v")}}).Events...)
	}
	res, err := h.txn(&pb.TxnRequest{Success: []*pb.RequestOp{putOp("t1", "x"), putOp("t2", "x"), delOp("k0", "", false)}}) // rev 7, 3 events
	if err != nil || res.Header.Revision != 7 {
		t.Fatal(res, err)
	}
	evs, err := h.s.Events(1, 0)
	if err != nil || len(evs) != 8 {
		t.Fatalf("Events(1): %d %v", len(evs), err)
	}
	wantEvents(t, evs[:5], all)
	// A limit never splits a revision.
	evs, err = h.s.Events(6, 2)
	if err != nil || len(evs) != 4 || evs[0].Kv.ModRevision != 6 || evs[3].Kv.ModRevision != 7 {
		t.Fatalf("Events(6, 2): %v %v", evs, err)
	}
	if evs, err = h.s.Events(8, 0); err != nil || len(evs) != 0 {
		t.Fatalf("Events(8): %v %v", evs, err)
	}
	h.compact(4)
	_, err = h.s.Events(3, 0)
	wantErr(t, err, ErrCompacted)
	if evs, err = h.s.Events(4, 1); err != nil || len(evs) != 1 || string(evs[0].Kv.Key) != "k2" {
		t.Fatalf("Events(4) after compaction: %v %v", evs, err)
	}
}

// TestSingleKeyReads: a read of one key, by Range, by a txn of that one range
// (ReadTxn's iterator without a snapshot) and by a txn of two ranges (its
// snapshot), finds the newest version at or below the revision read, nothing
// past a deletion, and never a longer key that shares its prefix; the count
// says the same, whether the versions are in the memtable, in sstables (read
// through their bloom filters) or both. The revisions are etcd's: every put
// and delete is one.
func TestSingleKeyReads(t *testing.T) {
	h := newHarness(t, Options{})
	h.put("a", "1")     // 2
	h.put("ab", "x")    // 3
	h.put("a", "2")     // 4
	h.put("a\x00", "z") // 5
	if err := h.db.Flush(); err != nil {
		t.Fatal(err)
	}
	h.del("a", "")  // 6
	h.put("a", "3") // 7
	h.put("b", "1") // 8
	h.del("b", "")  // 9
	a1, a2, a3 := kv("a", "1", 2, 2, 1), kv("a", "2", 2, 4, 2), kv("a", "3", 7, 7, 1)
	cases := []singleKeyRead{
		{"a", 1, nil}, {"a", 2, a1}, {"a", 3, a1}, {"a", 4, a2}, {"a", 5, a2}, {"a", 6, nil},
		{"a", 7, a3}, {"a", 0, a3}, {"b", 8, kv("b", "1", 8, 8, 1)}, {"b", 0, nil},
		{"ab", 0, kv("ab", "x", 3, 3, 1)}, {"a\x00", 0, kv("a\x00", "z", 5, 5, 1)}, {"c", 0, nil},
	}
	h.checkSingleKeyReads(cases)
	if err := h.db.Flush(); err != nil {
		t.Fatal(err)
	}
	h.checkSingleKeyReads(cases)
	h.compact(4)
	for n := 1; n <= 2; n++ {
		for rev, want := range map[int64]error{3: ErrCompacted, 10: ErrFutureRev} {
			rt := &pb.TxnRequest{}
			for range n {
				rt.Success = append(rt.Success, rangeOp(&pb.RangeRequest{Key: []byte("a"), Revision: rev}))
			}
			_, err := h.s.ReadTxn(t.Context(), rt)
			wantErr(t, err, want)
		}
	}
}

// singleKeyRead is a read of key at rev (0: the current one) and the
// version it must find (nil: none).
type singleKeyRead struct {
	key  string
	rev  int64
	want *mvccpb.KeyValue
}

// checkSingleKeyReads reads each case by Range and by read-only txns of one
// and of two ranges, with and without count_only, at store revision 9.
func (h *harness) checkSingleKeyReads(cases []singleKeyRead) {
	t := h.t
	t.Helper()
	for _, c := range cases {
		for _, countOnly := range []bool{false, true} {
			r := &pb.RangeRequest{Key: []byte(c.key), Revision: c.rev, CountOnly: countOnly}
			want := &pb.RangeResponse{Header: &pb.ResponseHeader{Revision: 9}}
			if c.want != nil {
				want.Count = 1
				if !countOnly {
					want.Kvs = []*mvccpb.KeyValue{c.want}
				}
			}
			what := fmt.Sprintf("%q at %d (count only %v)", c.key, c.rev, countOnly)
			equalMsg(t, "Range of "+what, h.rng(r), want)
			for n := 1; n <= 2; n++ {
				resp := h.readRanges(r, n)
				for i := range n {
					equalMsg(t, fmt.Sprintf("txn of %d ranges, %d: %s", n, i, what), resp.Responses[i].GetResponseRange(), want)
				}
			}
		}
	}
}

// readRanges runs a read-only txn of n copies of r, which must succeed at the
// store's revision.
func (h *harness) readRanges(r *pb.RangeRequest, n int) *pb.TxnResponse {
	h.t.Helper()
	rt := &pb.TxnRequest{}
	for range n {
		rt.Success = append(rt.Success, rangeOp(r))
	}
	resp, err := h.s.ReadTxn(h.t.(*testing.T).Context(), rt)
	if err != nil || !resp.Succeeded || resp.Header.Revision != h.s.Rev() || len(resp.Responses) != n {
		h.t.Fatalf("ReadTxn of %d ranges %v: %v %v", n, r, resp, err)
	}
	return resp
}
