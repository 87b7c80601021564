package mvcc

import (
	"errors"
	"reflect"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// A revoke-shaped entry: a txn of single-key deletes plus an extra write,
// committed as one revision in one batch with the applied index.
func TestApplyWithOneRevisionAndExtraWrites(t *testing.T) {
	h := newHarness(t, Options{LeaseExists: func(id int64) bool { return id == 7 }})
	for _, k := range []string{"a", "b", "c"} {
		h.mustOK(&pb.InternalRaftRequest{Put: &pb.PutRequest{Key: bs(k), Value: bs("v"), Lease: 7}})
	}
	rev := h.s.Rev()
	h.idx++
	req := &pb.InternalRaftRequest{Txn: &pb.TxnRequest{Success: []*pb.RequestOp{delOp("a", "", false), delOp("c", "", false)}}}
	res, err := h.s.ApplyWith(h.idx, 1, req, func(b *pebble.Batch) error { return b.Set([]byte{0x30, 1}, []byte("x"), nil) })
	if err != nil || res.Err != nil {
		t.Fatalf("ApplyWith: %v %v", err, res.Err)
	}
	if h.s.Rev() != rev+1 || len(res.Events) != 2 {
		t.Fatalf("rev %d (want %d), events %d", h.s.Rev(), rev+1, len(res.Events))
	}
	for _, ev := range res.Events {
		if ev.Type != mvccpb.Event_DELETE || ev.Kv.ModRevision != rev+1 {
			t.Fatalf("event %v", ev)
		}
	}
	if v, c, err := h.db.Get([]byte{0x30, 1}); err != nil || string(v) != "x" {
		t.Fatalf("extra write: %q %v", v, err)
	} else {
		c.Close()
	}
	if idx, _ := h.s.Applied(); idx != h.idx {
		t.Fatalf("applied %d", idx)
	}
	// The attachments a lessor rebuilds from: only "b" is still leased.
	var got []string
	if err := h.s.LeasedKeys(func(k []byte, id int64) error {
		if id != 7 {
			t.Errorf("key %q lease %d", k, id)
		}
		got = append(got, string(k))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, []string{"b"}) {
		t.Fatalf("leased keys %q", got)
	}
}

func TestApplyWithRejectsForeignWritesAndKeepsState(t *testing.T) {
	h := newHarness(t, Options{})
	h.put("a", "1")
	rev := h.s.Rev()
	boom := errors.New("boom")
	for _, tc := range []struct {
		name  string
		extra func(b *pebble.Batch) error
		want  error
	}{
		{"foreign", func(b *pebble.Batch) error { return b.Set([]byte{0x12, 9}, nil, nil) }, ErrForeignWrite},
		{"error", func(*pebble.Batch) error { return boom }, boom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := &pb.InternalRaftRequest{DeleteRange: &pb.DeleteRangeRequest{Key: bs("a")}}
			if _, err := h.s.ApplyWith(h.idx+1, 1, req, tc.extra); !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if h.s.Rev() != rev || h.get("a") == nil {
				t.Fatal("a failed ApplyWith changed the keyspace")
			}
		})
	}
	// A request error drops extra's writes too, but records the index.
	h.idx++
	req := &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: bs("z"), IgnoreValue: true}}
	res, err := h.s.ApplyWith(h.idx, 1, req, func(b *pebble.Batch) error { return b.Set([]byte{0x30, 2}, []byte("x"), nil) })
	if err != nil || !errors.Is(res.Err, ErrKeyNotFound) {
		t.Fatalf("%v %v", err, res.Err)
	}
	if _, _, err := h.db.Get([]byte{0x30, 2}); !errors.Is(err, pebble.ErrNotFound) {
		t.Fatalf("extra write committed with a failed request: %v", err)
	}
	if idx, _ := h.s.Applied(); idx != h.idx {
		t.Fatalf("applied %d", idx)
	}
}
