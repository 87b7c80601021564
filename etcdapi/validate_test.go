package etcdapi

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/protobuf/proto"
)

// Builders for txn ops.
func put(k string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(k), Value: []byte("v")}}}
}

func putReq(p *pb.PutRequest) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: p}}
}

func del(k string) *pb.RequestOp { return delRange(k, "") }

func delRange(k, end string) *pb.RequestOp {
	d := &pb.DeleteRangeRequest{Key: []byte(k)}
	if end != "" {
		d.RangeEnd = []byte(end)
	}
	return &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: d}}
}

func get(k string) *pb.RequestOp { return getReq(&pb.RangeRequest{Key: []byte(k)}) }

func getReq(r *pb.RangeRequest) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: r}}
}

func nested(success, failure []*pb.RequestOp) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: &pb.TxnRequest{Success: success, Failure: failure}}}
}

func ops(o ...*pb.RequestOp) []*pb.RequestOp { return o }

func repeat(n int, f func(i int) *pb.RequestOp) []*pb.RequestOp {
	var out []*pb.RequestOp
	for i := range n {
		out = append(out, f(i))
	}
	return out
}

func cmp(k string) *pb.Compare {
	return &pb.Compare{Key: []byte(k), Target: pb.Compare_VERSION, Result: pb.Compare_EQUAL}
}

// sameErr compares errors by identity, as the gRPC errors are shared values.
func sameErr(t *testing.T, name string, got, want error) {
	t.Helper()
	if got != want {
		t.Errorf("%s: got error %v, want %v", name, got, want)
	}
}

func TestCheckRangeRequest(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    *pb.RangeRequest
		want error
	}{
		{"ok", &pb.RangeRequest{Key: []byte("a")}, nil},
		{"sorted ok", &pb.RangeRequest{Key: []byte("a"), SortOrder: pb.RangeRequest_DESCEND, SortTarget: pb.RangeRequest_VALUE}, nil},
		{"negative revision is etcd's latest", &pb.RangeRequest{Key: []byte("a"), Revision: -5}, nil},
		{"empty key", &pb.RangeRequest{RangeEnd: []byte("b")}, rpctypes.ErrGRPCEmptyKey},
		{"nil", nil, rpctypes.ErrGRPCEmptyKey},
		{"bad order", &pb.RangeRequest{Key: []byte("a"), SortOrder: 200}, rpctypes.ErrGRPCInvalidSortOption},
		{"bad target", &pb.RangeRequest{Key: []byte("a"), SortTarget: 100}, rpctypes.ErrGRPCInvalidSortOption},
		{"empty key before sort", &pb.RangeRequest{SortOrder: 200}, rpctypes.ErrGRPCEmptyKey},
	} {
		sameErr(t, tc.name, checkRangeRequest(tc.r), tc.want)
	}
}

func TestCheckRangeStreamRequest(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    *pb.RangeRequest
		want error
	}{
		{"plain", &pb.RangeRequest{Key: []byte("a")}, nil},
		{"key ascending", &pb.RangeRequest{Key: []byte("a"), SortOrder: pb.RangeRequest_ASCEND}, nil},
		{"no order, other target", &pb.RangeRequest{Key: []byte("a"), SortTarget: pb.RangeRequest_MOD}, nil},
		{"descending", &pb.RangeRequest{Key: []byte("a"), SortOrder: pb.RangeRequest_DESCEND}, errGRPCStreamSort},
		{"by value", &pb.RangeRequest{Key: []byte("a"), SortOrder: pb.RangeRequest_ASCEND, SortTarget: pb.RangeRequest_VALUE}, errGRPCStreamSort},
		{"min mod", &pb.RangeRequest{Key: []byte("a"), MinModRevision: 1}, errGRPCStreamFilters},
		{"max create", &pb.RangeRequest{Key: []byte("a"), MaxCreateRevision: 1}, errGRPCStreamFilters},
		{"sort before filters", &pb.RangeRequest{Key: []byte("a"), SortOrder: pb.RangeRequest_DESCEND, MinModRevision: 1}, errGRPCStreamSort},
		{"invalid sort first", &pb.RangeRequest{Key: []byte("a"), SortOrder: 9}, rpctypes.ErrGRPCInvalidSortOption},
		{"empty key first", &pb.RangeRequest{SortOrder: pb.RangeRequest_DESCEND}, rpctypes.ErrGRPCEmptyKey},
	} {
		sameErr(t, tc.name, checkRangeStreamRequest(tc.r), tc.want)
	}
}

func TestCheckPutRequest(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    *pb.PutRequest
		want error
	}{
		{"ok", &pb.PutRequest{Key: []byte("a"), Value: []byte("v"), Lease: 5}, nil},
		{"ignore value, no value", &pb.PutRequest{Key: []byte("a"), IgnoreValue: true, Lease: 5}, nil},
		{"ignore lease, no lease", &pb.PutRequest{Key: []byte("a"), Value: []byte("v"), IgnoreLease: true}, nil},
		{"empty key", &pb.PutRequest{Value: []byte("v")}, rpctypes.ErrGRPCEmptyKey},
		{"value provided", &pb.PutRequest{Key: []byte("a"), Value: []byte("v"), IgnoreValue: true}, rpctypes.ErrGRPCValueProvided},
		{"lease provided", &pb.PutRequest{Key: []byte("a"), Lease: 1, IgnoreLease: true}, rpctypes.ErrGRPCLeaseProvided},
		{"value before lease", &pb.PutRequest{Key: []byte("a"), Value: []byte("v"), IgnoreValue: true, Lease: 1, IgnoreLease: true}, rpctypes.ErrGRPCValueProvided},
		{"key before value", &pb.PutRequest{Value: []byte("v"), IgnoreValue: true}, rpctypes.ErrGRPCEmptyKey},
	} {
		sameErr(t, tc.name, checkPutRequest(tc.r), tc.want)
	}
}

func TestCheckDeleteRequest(t *testing.T) {
	sameErr(t, "ok", checkDeleteRequest(&pb.DeleteRangeRequest{Key: []byte("a")}), nil)
	sameErr(t, "empty key", checkDeleteRequest(&pb.DeleteRangeRequest{RangeEnd: []byte("b")}), rpctypes.ErrGRPCEmptyKey)
}

func TestCheckTxnShape(t *testing.T) {
	const maxOps = 3
	keys := func(prefix string) func(int) *pb.RequestOp {
		return func(i int) *pb.RequestOp { return put(fmt.Sprintf("%s%d", prefix, i)) }
	}
	for _, tc := range []struct {
		name string
		r    *pb.TxnRequest
		want error
	}{
		{"empty", &pb.TxnRequest{}, nil},
		{"at the limit", &pb.TxnRequest{
			Compare: []*pb.Compare{cmp("a"), cmp("b"), cmp("c")},
			Success: repeat(maxOps, keys("s")), Failure: repeat(maxOps, keys("f")),
		}, nil},
		{"too many compares", &pb.TxnRequest{Compare: []*pb.Compare{cmp("a"), cmp("b"), cmp("c"), cmp("d")}}, rpctypes.ErrGRPCTooManyOps},
		{"too many success ops", &pb.TxnRequest{Success: repeat(maxOps+1, keys("s"))}, rpctypes.ErrGRPCTooManyOps},
		{"too many failure ops", &pb.TxnRequest{Failure: repeat(maxOps+1, keys("f"))}, rpctypes.ErrGRPCTooManyOps},
		{"nested within the budget left", &pb.TxnRequest{Success: ops(put("a"), nested(ops(put("b")), ops(put("c"))))}, nil},
		{"nested over the budget left", &pb.TxnRequest{Success: ops(put("a"), nested(ops(put("b"), put("c")), nil))}, rpctypes.ErrGRPCTooManyOps},
		{"nested budget counts the largest list", &pb.TxnRequest{
			Compare: []*pb.Compare{cmp("x"), cmp("y")},
			Success: ops(nested(ops(put("b"), put("c")), nil)),
		}, rpctypes.ErrGRPCTooManyOps},
		{"empty nested with no budget", &pb.TxnRequest{Success: ops(put("a"), put("b"), nested(nil, nil))}, nil},
		{"too many before empty compare key", &pb.TxnRequest{Compare: []*pb.Compare{{}, cmp("b"), cmp("c"), cmp("d")}}, rpctypes.ErrGRPCTooManyOps},
		{"empty compare key", &pb.TxnRequest{Compare: []*pb.Compare{cmp("a"), {}}}, rpctypes.ErrGRPCEmptyKey},
		{"compare key before ops", &pb.TxnRequest{Compare: []*pb.Compare{{}}, Success: ops(putReq(&pb.PutRequest{Key: []byte("a"), Value: []byte("v"), IgnoreValue: true}))}, rpctypes.ErrGRPCEmptyKey},
		{"empty op", &pb.TxnRequest{Success: ops(&pb.RequestOp{})}, rpctypes.ErrGRPCKeyNotFound},
		{"empty op in failure", &pb.TxnRequest{Failure: ops(&pb.RequestOp{})}, rpctypes.ErrGRPCKeyNotFound},
		{"range empty key", &pb.TxnRequest{Success: ops(get(""))}, rpctypes.ErrGRPCEmptyKey},
		{"range bad sort", &pb.TxnRequest{Success: ops(getReq(&pb.RangeRequest{Key: []byte("a"), SortTarget: 77}))}, rpctypes.ErrGRPCInvalidSortOption},
		{"put value provided", &pb.TxnRequest{Success: ops(putReq(&pb.PutRequest{Key: []byte("a"), Value: []byte("v"), IgnoreValue: true}))}, rpctypes.ErrGRPCValueProvided},
		{"put lease provided", &pb.TxnRequest{Failure: ops(putReq(&pb.PutRequest{Key: []byte("a"), Lease: 3, IgnoreLease: true}))}, rpctypes.ErrGRPCLeaseProvided},
		{"delete empty key", &pb.TxnRequest{Success: ops(del(""))}, rpctypes.ErrGRPCEmptyKey},
		{"nested op checked", &pb.TxnRequest{Success: ops(nested(nil, ops(put(""))))}, rpctypes.ErrGRPCEmptyKey},
		{"success before failure", &pb.TxnRequest{Success: ops(put("")), Failure: ops(&pb.RequestOp{})}, rpctypes.ErrGRPCEmptyKey},
		{"ops in order", &pb.TxnRequest{Success: ops(&pb.RequestOp{}, put(""))}, rpctypes.ErrGRPCKeyNotFound},
		{"shape before duplicates", &pb.TxnRequest{Success: ops(put("a"), put("a"), put(""))}, rpctypes.ErrGRPCEmptyKey},
		{"duplicates", &pb.TxnRequest{Success: ops(put("a"), put("a"))}, rpctypes.ErrGRPCDuplicateKey},
		{"duplicates in failure", &pb.TxnRequest{Failure: ops(put("a"), put("a"))}, rpctypes.ErrGRPCDuplicateKey},
		{"success and failure are independent", &pb.TxnRequest{Success: ops(put("a")), Failure: ops(put("a"), del("a"))}, rpctypes.ErrGRPCDuplicateKey},
		{"same key on both branches", &pb.TxnRequest{Success: ops(put("a")), Failure: ops(put("a"))}, nil},
	} {
		sameErr(t, tc.name, checkTxn(tc.r, maxOps), tc.want)
	}
}

// TestCheckWrites is the duplicate-key matrix of etcd's checkIntervals,
// including the cases from etcd's TestV3TxnDuplicateKeys and the quirks of
// its rules (sibling order, "\x00" range ends).
func TestCheckWrites(t *testing.T) {
	dup := rpctypes.ErrGRPCDuplicateKey
	for _, tc := range []struct {
		name string
		ops  []*pb.RequestOp
		want error
	}{
		// etcd's TestV3TxnDuplicateKeys.
		{"put twice", ops(put("abc"), put("abc")), dup},
		{"put and delete key", ops(put("abc"), del("abc")), dup},
		{"put and delete range", ops(put("abc"), delRange("a", "b")), dup},
		{"put then nested delete", ops(put("abc"), nested(ops(delRange("a", "b")), nil)), dup},
		{"delete then nested put", ops(delRange("a", "b"), nested(ops(put("abc")), nil)), dup},
		{"two nested puts on both branches", ops(nested(ops(put("abc")), ops(put("abc"))), nested(ops(put("abc")), ops(put("abc")))), dup},
		{"delete outside, nested puts", ops(delRange("abb", "abc"), nested(ops(put("abc")), ops(put("abc")))), nil},
		{"nested deletes", ops(nested(ops(delRange("a", "b")), nil), nested(ops(delRange("a", "b")), ops(delRange("a", "b")))), nil},
		{"deletes never conflict", ops(del("abc"), delRange("a", "b"), del("abc"), delRange("a", "b")), nil},
		{"range end is exclusive", ops(put("abc"), delRange("abb", "abc")), nil},

		// Same level.
		{"different keys", ops(put("a"), put("b"), del("c")), nil},
		{"delete before put", ops(del("a"), put("a")), dup},
		{"range start is inclusive", ops(put("abb"), delRange("abb", "abc")), dup},
		{"point delete covers one key", ops(del("a"), put("a\x00"), put("b")), nil},
		{"empty range covers nothing", ops(delRange("a", "a"), put("a")), nil},
		{"inverted range covers nothing", ops(delRange("c", "b"), put("b"), put("c")), nil},
		{"from-key range end covers nothing, as in etcd", ops(delRange("a", "\x00"), put("b")), nil},
		{"ranges and gets are ignored", ops(get("a"), put("a"), get("a")), nil},

		// Nested txns.
		{"put on both branches of one txn", ops(nested(ops(put("a")), ops(put("a")))), nil},
		{"put and nested put", ops(put("a"), nested(ops(put("a")), nil)), dup},
		{"nested put and put", ops(nested(nil, ops(put("a"))), put("a")), dup},
		{"success of one, failure of another", ops(nested(ops(put("a")), nil), nested(nil, ops(put("a")))), dup},
		{"failure of one, success of another", ops(nested(nil, ops(put("a"))), nested(ops(put("a")), nil)), dup},
		{"failure of two", ops(nested(nil, ops(put("a"))), nested(nil, ops(put("a")))), dup},
		{"nested delete then sibling put", ops(nested(ops(del("a")), nil), nested(ops(put("a")), nil)), dup},
		{"nested failure delete then sibling put", ops(nested(nil, ops(del("a"))), nested(nil, ops(put("a")))), dup},
		{"nested put then sibling delete passes, as in etcd", ops(nested(ops(put("a")), nil), nested(ops(del("a")), nil)), nil},
		{"nested delete, put at this level", ops(nested(nil, ops(delRange("a", "c"))), put("b")), dup},
		{"put on one branch, delete on the other", ops(nested(ops(put("a")), ops(del("a")))), nil},
		{"branch put and delete, then put", ops(nested(ops(put("a")), ops(del("a"))), put("a")), dup},
		{"conflict inside a nested branch", ops(nested(ops(put("a"), del("a")), nil)), dup},
		{"conflict inside a failure branch", ops(nested(nil, ops(put("a"), put("a")))), dup},
		{"three levels", ops(nested(ops(nested(ops(put("a")), nil)), nil), put("a")), dup},
		{"three levels, delete", ops(delRange("a", "b"), nested(nil, ops(nested(ops(put("ab")), nil)))), dup},
		{"three levels, exclusive", ops(nested(ops(nested(ops(put("a")), ops(put("a")))), ops(put("a")))), nil},
		{"deep delete reaches the top", ops(nested(ops(nested(ops(delRange("a", "b")), nil)), nil), put("ab")), dup},
	} {
		_, err := checkWrites(tc.ops)
		sameErr(t, tc.name, err, tc.want)
	}
}

func TestTxnReadonlyAndSerializable(t *testing.T) {
	ser := getReq(&pb.RangeRequest{Key: []byte("a"), Serializable: true})
	for _, tc := range []struct {
		name                   string
		r                      *pb.TxnRequest
		readonly, serializable bool
	}{
		{"no ops", &pb.TxnRequest{Compare: []*pb.Compare{cmp("a")}}, true, true},
		{"linearizable gets", &pb.TxnRequest{Success: ops(get("a")), Failure: ops(get("b"))}, true, false},
		{"serializable gets", &pb.TxnRequest{Success: ops(ser), Failure: ops(ser)}, true, true},
		{"one linearizable get", &pb.TxnRequest{Success: ops(ser), Failure: ops(get("b"))}, true, false},
		{"put", &pb.TxnRequest{Success: ops(ser, put("a"))}, false, false},
		{"delete in failure", &pb.TxnRequest{Failure: ops(del("a"))}, false, false},
		{"nested read-only txn", &pb.TxnRequest{Success: ops(nested(ops(ser), nil))}, false, false},
	} {
		if got := isTxnReadonly(tc.r); got != tc.readonly {
			t.Errorf("%s: isTxnReadonly = %v, want %v", tc.name, got, tc.readonly)
		}
		if got := isTxnSerializable(tc.r); got != tc.serializable {
			t.Errorf("%s: isTxnSerializable = %v, want %v", tc.name, got, tc.serializable)
		}
	}
}

// The size checked is the request's once Propose has set the ID in its
// header, whatever authorize stamped there before (etcd marshals the
// request, ID and caller included, to compare it with the limit).
func TestCheckRequestSize(t *testing.T) {
	for _, h := range []*pb.RequestHeader{
		nil, {}, {Username: "alice", AuthRevision: 7}, {ID: math.MaxUint64, Username: "bob", AuthRevision: 3},
	} {
		req := &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte("k"), Value: make([]byte, 1000)}, Header: h}
		proposed := proto.CloneOf(req)
		proposed.Header = &pb.RequestHeader{ID: math.MaxUint64, Username: h.GetUsername(), AuthRevision: h.GetAuthRevision()}
		limit := proto.Size(proposed)
		if err := checkRequestSize(req, limit); err != nil {
			t.Errorf("header %v, at the limit: %v", h, err)
		}
		if err := checkRequestSize(req, limit-1); !errors.Is(err, errRequestTooLarge) {
			t.Errorf("header %v, one byte over: got %v, want errRequestTooLarge", h, err)
		}
	}
}

// TestHeaderFieldSize checks the arithmetic of headerFieldSize against the
// protobuf library's own size of the same header.
func TestHeaderFieldSize(t *testing.T) {
	for _, h := range []*pb.RequestHeader{
		{}, {ID: 1}, {ID: math.MaxUint64}, {Username: "root"}, {AuthRevision: 300},
		{ID: 1 << 40, Username: strings.Repeat("u", 200), AuthRevision: math.MaxUint64},
	} {
		want := proto.Size(&pb.InternalRaftRequest{Header: h})
		if got := headerFieldSize(h.ID, h.Username, h.AuthRevision); got != want {
			t.Errorf("header %v: got %d, want %d", h, got, want)
		}
	}
}
