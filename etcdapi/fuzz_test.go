package etcdapi

import (
	"context"
	"log/slog"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/watch"
)

// fuzzKinds are the requests FuzzRequest decodes, selected by its first
// argument.
const (
	fuzzRange = iota
	fuzzPut
	fuzzDelete
	fuzzTxn
	fuzzCompact
	fuzzLeaseGrant
	fuzzWatch
	fuzzKinds
)

// fuzzSeeds are well-formed requests of each kind.
func fuzzSeeds() map[int][]proto.Message {
	put := &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("k"), Value: []byte("v")}}}
	rng := &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("z")}}}
	del := &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte("k"), PrevKv: true}}}
	nested := &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: &pb.TxnRequest{Success: []*pb.RequestOp{put}}}}
	return map[int][]proto.Message{
		fuzzRange: {&pb.RangeRequest{Key: []byte("k")}, &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, Limit: 3,
			SortOrder: pb.RangeRequest_DESCEND, SortTarget: pb.RangeRequest_MOD, Revision: 2, CountOnly: true}},
		fuzzPut:    {&pb.PutRequest{Key: []byte("k"), Value: []byte("v"), PrevKv: true}, &pb.PutRequest{Key: []byte("k"), IgnoreValue: true}},
		fuzzDelete: {&pb.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte{0}}},
		fuzzTxn: {&pb.TxnRequest{
			Compare: []*pb.Compare{{Key: []byte("k"), Target: pb.Compare_VERSION, Result: pb.Compare_GREATER,
				TargetUnion: &pb.Compare_Version{Version: 0}}},
			Success: []*pb.RequestOp{put, rng}, Failure: []*pb.RequestOp{del, nested}}},
		fuzzCompact:    {&pb.CompactionRequest{Revision: 1, Physical: true}},
		fuzzLeaseGrant: {&pb.LeaseGrantRequest{TTL: 10}, &pb.LeaseGrantRequest{TTL: 5, ID: 77}},
		fuzzWatch: {
			&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{
				Key: []byte("k"), RangeEnd: []byte{0}, StartRevision: 1, PrevKv: true, Fragment: true, ProgressNotify: true,
				Filters: []pb.WatchCreateRequest_FilterType{pb.WatchCreateRequest_NOPUT}, WatchId: 3}}},
			&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CancelRequest{CancelRequest: &pb.WatchCancelRequest{WatchId: 3}}},
			&pb.WatchRequest{RequestUnion: &pb.WatchRequest_ProgressRequest{ProgressRequest: &pb.WatchProgressRequest{}}},
		},
	}
}

// FuzzRequest decodes arbitrary bytes as a client request of one kind and
// hands it to the real service handler over a member whose store is a real
// mvcc store (writes are applied to it). Nothing may panic, and every
// answer must be a success or one of etcd's client-facing errors: a
// request that passes validation must never reach the store in a shape it
// cannot apply (codes.Unknown, Internal or DataLoss would say it did).
func FuzzRequest(f *testing.F) {
	for kind, msgs := range fuzzSeeds() {
		for _, m := range msgs {
			b, err := proto.Marshal(m)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(uint8(kind), b)
		}
	}
	f.Add(uint8(fuzzTxn), []byte{0x12, 0x02, 0x22, 0x00}) // a success op with no request
	f.Fuzz(func(t *testing.T, kind uint8, data []byte) {
		m := newLeaseMember(t)
		e := newEdge(m.backends(), slog.New(slog.DiscardHandler))
		kv := &kvService{e: e}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// Something to read, delete and compare against.
		if _, err := kv.Put(ctx, &pb.PutRequest{Key: []byte("k"), Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
		var err error
		switch int(kind) % fuzzKinds {
		case fuzzRange:
			err = decodeAnd(data, &pb.RangeRequest{}, func(r *pb.RangeRequest) error { _, err := kv.Range(ctx, r); return err })
		case fuzzPut:
			err = decodeAnd(data, &pb.PutRequest{}, func(r *pb.PutRequest) error { _, err := kv.Put(ctx, r); return err })
		case fuzzDelete:
			err = decodeAnd(data, &pb.DeleteRangeRequest{}, func(r *pb.DeleteRangeRequest) error { _, err := kv.DeleteRange(ctx, r); return err })
		case fuzzTxn:
			err = decodeAnd(data, &pb.TxnRequest{}, func(r *pb.TxnRequest) error { _, err := kv.Txn(ctx, r); return err })
		case fuzzCompact:
			err = decodeAnd(data, &pb.CompactionRequest{}, func(r *pb.CompactionRequest) error { _, err := kv.Compact(ctx, r); return err })
		case fuzzLeaseGrant:
			ls := &leaseService{e: e}
			err = decodeAnd(data, &pb.LeaseGrantRequest{}, func(r *pb.LeaseGrantRequest) error { _, err := ls.LeaseGrant(ctx, r); return err })
		case fuzzWatch:
			err = decodeAnd(data, &pb.WatchRequest{}, func(r *pb.WatchRequest) error { fuzzWatchRequest(ctx, m, r); return nil })
		}
		switch status.Code(err) {
		case codes.Unknown, codes.Internal, codes.DataLoss:
			t.Fatalf("kind %d: a request passed validation but the member failed it: %v", kind, err)
		}
	})
}

// decodeAnd unmarshals data into m and, if that works, runs fn on it.
func decodeAnd[T proto.Message](data []byte, m T, fn func(T) error) error {
	if err := proto.Unmarshal(data, m); err != nil {
		return nil // gRPC would have refused it before any handler
	}
	return fn(m)
}

// fuzzWatchRequest runs one watch request on a stream of a real hub over
// m's store, then a write the watchers may see, and closes everything.
func fuzzWatchRequest(ctx context.Context, m *leaseMember, r *pb.WatchRequest) {
	hub := watch.NewHub(m.store, watch.Config{MaxWatchers: 4, QueueSize: 4})
	defer hub.Close()
	ws := hub.NewStream(ctx, func(watch.Response) error { return nil })
	defer ws.Close()
	switch u := r.GetRequestUnion().(type) {
	case *pb.WatchRequest_CreateRequest:
		ws.Create(u.CreateRequest)
	case *pb.WatchRequest_CancelRequest:
		ws.Cancel(u.CancelRequest.GetWatchId())
	case *pb.WatchRequest_ProgressRequest:
		ws.RequestProgress()
	}
	res, err := m.apply(&pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte("k"), Value: []byte("w")}})
	if err == nil && res.Err == nil {
		hub.Notify(res.Resp.(*pb.PutResponse).GetHeader().GetRevision(), res.Events)
	}
}
