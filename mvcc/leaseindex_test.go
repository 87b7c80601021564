package mvcc

import (
	"errors"
	"reflect"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// leased lists what LeasedKeys reports, as "lease:key".
func leased(t *testing.T, h *harness) []string {
	t.Helper()
	var out []string
	if err := h.s.LeasedKeys(func(k []byte, id int64) error {
		out = append(out, string(rune('0'+id))+":"+string(k))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func leasedPut(key string, id int64) *pb.InternalRaftRequest {
	return &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte(key), Value: []byte("v"), Lease: id}}
}

// TestLeaseIndexRebuiltWhenStale writes as a build without the index would
// (the marker left behind the applied index, a stray index entry) and
// requires the next open to distrust the index and rebuild it from the
// keyspace; the same stray entry with the marker kept current is what
// VerifyLeaseIndex reports.
func TestLeaseIndexRebuiltWhenStale(t *testing.T) {
	h := newHarness(t, Options{LeaseExists: func(id int64) bool { return id == 7 || id == 8 }})
	h.mustOK(leasedPut("a", 7))
	h.mustOK(leasedPut("b", 7))
	h.mustOK(leasedPut("a", 8)) // moves a to lease 8
	h.mustOK(leasedPut("c", 0))
	h.mustOK(&pb.InternalRaftRequest{DeleteRange: &pb.DeleteRangeRequest{Key: []byte("b")}})
	h.mustOK(leasedPut("d", 7))
	if got, want := leased(t, h), []string{"7:d", "8:a"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("leased keys %q, want %q", got, want)
	}
	h.reopen()
	if !h.s.leaseIdx.Load() {
		t.Fatal("after a reopen, the index this build kept is not trusted")
	}

	// A stray entry with the marker current: the index is wrong and trusted.
	stray := leaseIndexKey(7, []byte("ghost"))
	if err := h.db.Set(stray, seal(stray, nil), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := h.s.VerifyLeaseIndex(); !errors.Is(err, ErrLeaseIndex) {
		t.Fatalf("VerifyLeaseIndex with a stray entry: %v, want ErrLeaseIndex", err)
	}

	// An older release applies an entry: it moves the applied index and not
	// the marker.
	h.s.leaseIdx.Store(false)
	h.mustOK(leasedPut("e", 7))
	h.reopen()
	if h.s.leaseIdx.Load() {
		t.Fatal("the index is trusted although entries were applied without it")
	}
	if got, want := leased(t, h), []string{"7:d", "7:e", "8:a"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after the rebuild, leased keys %q, want %q", got, want)
	}
	if err := h.s.VerifyLeaseIndex(); err != nil {
		t.Fatal(err)
	}
	h.reopen()
	if !h.s.leaseIdx.Load() {
		t.Fatal("the rebuilt index is not trusted after a reopen")
	}
}

// TestClearLeaseIndex: with no lease, an untrusted index is emptied
// without a scan and trusted again.
func TestClearLeaseIndex(t *testing.T) {
	h := newHarness(t, Options{LeaseExists: func(id int64) bool { return id == 7 }})
	h.mustOK(leasedPut("a", 7))
	h.mustOK(&pb.InternalRaftRequest{DeleteRange: &pb.DeleteRangeRequest{Key: []byte("a")}})
	stray := leaseIndexKey(7, []byte("ghost"))
	if err := h.db.Set(stray, seal(stray, nil), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	h.s.leaseIdx.Store(false)
	h.put("x", "y")
	h.reopen()
	if err := h.s.ClearLeaseIndex(); err != nil {
		t.Fatal(err)
	}
	if got := leased(t, h); len(got) != 0 {
		t.Fatalf("leased keys %q after the clear", got)
	}
	h.reopen()
	if !h.s.leaseIdx.Load() {
		t.Fatal("the cleared index is not trusted after a reopen")
	}
}
