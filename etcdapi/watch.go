package etcdapi

import (
	"context"
	"errors"
	"io"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/watch"
)

// errNoLeaderWatch ends a require-leader stream whose member lost its leader.
var errNoLeaderWatch = errors.New("etcdapi: watch: no leader")

// watchService is etcd's Watch service over a member's watch hub.
type watchService struct {
	pb.UnimplementedWatchServer
	e     *edge
	grace time.Duration // how long a require-leader stream survives without a leader
}

// requireLeader reports whether the client asked for a leader
// (clientv3.WithRequireLeader).
func requireLeader(ctx context.Context) bool {
	// One key, without copying the whole metadata map as
	// FromIncomingContext does (on every watch and keep-alive stream).
	vs := metadata.ValueFromIncomingContext(ctx, rpctypes.MetadataRequireLeaderKey)
	return len(vs) > 0 && vs[0] == rpctypes.MetadataHasLeader
}

func (s *watchService) Watch(stream pb.Watch_WatchServer) error {
	sctx := stream.Context()
	needLeader := requireLeader(sctx)
	if needLeader && s.e.b.Leader.Leader() == 0 {
		return rpctypes.ErrGRPCNoLeader
	}
	maxBytes := s.e.limits().MaxRequestBytes
	ws := s.e.b.Watch.NewStream(sctx, func(r watch.Response) error {
		return s.send(stream, r, maxBytes)
	})
	defer ws.Close()
	ctx := ws.Context()
	if needLeader {
		go endWithoutLeader(ctx, s.e.b.Leader, s.grace, func() { ws.Abort(errNoLeaderWatch) })
	}
	go func() {
		for {
			req, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return // the client closed its side; keep sending
			}
			if err != nil {
				return // the stream's context ends with it
			}
			switch r := req.GetRequestUnion().(type) {
			case *pb.WatchRequest_CreateRequest:
				if reason := s.refusal(sctx, r.CreateRequest); reason != "" {
					ws.Refuse(reason)
					continue
				}
				ws.Create(r.CreateRequest)
			case *pb.WatchRequest_CancelRequest:
				ws.Cancel(r.CancelRequest.GetWatchId())
			case *pb.WatchRequest_ProgressRequest:
				ws.RequestProgress()
			}
		}
	}()
	<-ctx.Done()
	cause := context.Cause(ctx)
	switch {
	case sctx.Err() != nil:
		return toGRPCError(sctx.Err())
	case errors.Is(cause, errNoLeaderWatch):
		return rpctypes.ErrGRPCNoLeader
	case errors.Is(cause, watch.ErrHubClosed):
		return rpctypes.ErrGRPCStopped
	}
	return toGRPCError(cause)
}

// refusal is etcd's isWatchPermitted: "" if the caller may read the
// watched range, else the cancel reason etcd gives.
func (s *watchService) refusal(ctx context.Context, r *pb.WatchCreateRequest) string {
	if r == nil {
		return ""
	}
	// A refusal is confirmed after a read index, so a watch created just
	// after a grant acknowledged through another member is not refused.
	err := s.e.recheck(ctx, func() error {
		_, err := s.e.checkRange(ctx, r.GetKey(), r.GetRangeEnd())
		return err
	})
	return watchCancelReason(err)
}

// send turns r into WatchResponses: header, prev_kv, fragments.
func (s *watchService) send(stream pb.Watch_WatchServer, r watch.Response, maxBytes int) error {
	h := s.e.fillIdentity(nil)
	h.Revision = r.Revision
	evs := r.Events
	if r.PrevKV && len(evs) > 0 {
		evs = s.withPrevKV(stream.Context(), evs)
	}
	wr := &pb.WatchResponse{
		Header: h, WatchId: r.WatchID, Created: r.Created, Canceled: r.Canceled,
		CompactRevision: r.CompactRevision, CancelReason: r.CancelReason, Events: evs,
	}
	if !r.Fragment || len(evs) < 2 || proto.Size(wr) < maxBytes {
		return stream.Send(wr)
	}
	return sendFragments(wr, maxBytes, stream.Send)
}

// withPrevKV returns copies of evs with PrevKv read at ModRevision-1 (left
// unset if that version is gone), as etcd's sendLoop does.
func (s *watchService) withPrevKV(ctx context.Context, evs []*mvccpb.Event) []*mvccpb.Event {
	out := make([]*mvccpb.Event, len(evs))
	for i, ev := range evs {
		cp := &mvccpb.Event{Type: ev.Type, Kv: ev.Kv}
		rr, err := s.e.b.KV.Range(ctx, &pb.RangeRequest{Key: ev.Kv.Key, Revision: ev.Kv.ModRevision - 1})
		if err == nil && len(rr.Kvs) > 0 {
			cp.PrevKv = rr.Kvs[0]
		}
		out[i] = cp
	}
	return out
}

// sendFragments splits wr into responses below maxBytes (at least one
// event each), all but the last marked Fragment, as etcd's v3rpc does.
func sendFragments(wr *pb.WatchResponse, maxBytes int, send func(*pb.WatchResponse) error) error {
	evs := wr.Events
	for len(evs) > 0 {
		cur := &pb.WatchResponse{
			Header: wr.Header, WatchId: wr.WatchId, Created: wr.Created, Canceled: wr.Canceled,
			CompactRevision: wr.CompactRevision, CancelReason: wr.CancelReason, Fragment: true,
		}
		n := 0
		for _, ev := range evs {
			cur.Events = append(cur.Events, ev)
			if len(cur.Events) > 1 && proto.Size(cur) >= maxBytes {
				cur.Events = cur.Events[:len(cur.Events)-1]
				break
			}
			n++
		}
		evs = evs[n:]
		if len(evs) == 0 {
			cur.Fragment = false
		}
		if err := send(cur); err != nil {
			return err
		}
	}
	return nil
}
