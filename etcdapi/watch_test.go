package etcdapi

import (
	"fmt"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"
)

// sendFragments splits like etcd: every piece below the limit (or a single
// event), all but the last marked Fragment, the events in order.
func TestSendFragments(t *testing.T) {
	wr := &pb.WatchResponse{Header: &pb.ResponseHeader{Revision: 9}, WatchId: 3}
	for i := 0; i < 10; i++ {
		wr.Events = append(wr.Events, &mvccpb.Event{Kv: &mvccpb.KeyValue{Key: []byte(fmt.Sprint(i)), Value: make([]byte, 100), ModRevision: 9}})
	}
	var got []*pb.WatchResponse
	if err := sendFragments(wr, 350, func(r *pb.WatchResponse) error { got = append(got, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) < 4 {
		t.Fatalf("%d fragments", len(got))
	}
	n := 0
	for i, r := range got {
		if r.Fragment != (i < len(got)-1) || r.WatchId != 3 || r.Header.Revision != 9 {
			t.Fatalf("fragment %d: %+v", i, r)
		}
		if len(r.Events) > 1 && proto.Size(r) >= 350 {
			t.Fatalf("fragment %d is %d bytes", i, proto.Size(r))
		}
		for _, ev := range r.Events {
			if string(ev.Kv.Key) != fmt.Sprint(n) {
				t.Fatalf("event %d out of order", n)
			}
			n++
		}
	}
	if n != 10 {
		t.Fatalf("%d events", n)
	}
}
