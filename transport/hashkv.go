package transport

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Hasher answers the peer service's HashKV RPC, which the leader's
// corruption check calls on every other member (etcd serves the same on its
// peer URLs at /members/hashkv). The member that owns the transport
// implements it; payloads are opaque here. It may be called concurrently.
type Hasher interface {
	// PeerHashKV answers a marshaled HashKV request with a marshaled
	// response. Its error text reaches the caller intact (RemoteError).
	PeerHashKV(ctx context.Context, req []byte) ([]byte, error)
}

const hashKVMethod = "/" + serviceName + "/HashKV"

// hashKVMethodDesc is the unary HashKV method of the peer service.
var hashKVMethodDesc = grpc.MethodDesc{
	MethodName: "HashKV",
	Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
		var in wrapperspb.BytesValue
		if err := dec(&in); err != nil {
			return nil, err
		}
		return srv.(*GRPC).serveHashKV(ctx, in.Value)
	},
}

// unaryMethods are the unary methods of the peer service.
var unaryMethods = append(slices.Clip(membershipMethods), hashKVMethodDesc)

func (t *GRPC) serveHashKV(ctx context.Context, req []byte) (*wrapperspb.BytesValue, error) {
	if _, err := t.authorize(ctx); err != nil {
		return nil, err
	}
	if t.cfg.Hasher == nil {
		return nil, status.Error(codes.Unimplemented, "transport: hashes are not served")
	}
	b, err := t.cfg.Hasher.PeerHashKV(ctx, req)
	if err != nil {
		return nil, status.Error(codes.Aborted, err.Error())
	}
	return wrapperspb.Bytes(b), nil
}

// PeerHashKV asks peer, at urls (tried in order), for its hash
// (Hasher.PeerHashKV), on a connection of its own; the transport need not
// know the peer (the initial corruption check runs before the member
// starts). An error the peer's Hasher returned comes back as a
// *RemoteError; anything else (no URL answered, or ctx ended) as a plain
// error.
func (t *GRPC) PeerHashKV(ctx context.Context, peer uint64, urls []string, req []byte) ([]byte, error) {
	return t.callURLs(ctx, peer, urls, hashKVMethod, "", req)
}

// callPeer calls a unary BytesValue method of peer's service at the URLs
// the transport knows for it (callURLs).
func (t *GRPC) callPeer(ctx context.Context, peer uint64, method, op string, req []byte) ([]byte, error) {
	t.mu.RLock()
	p := t.peers[peer]
	t.mu.RUnlock()
	if p == nil {
		return nil, fmt.Errorf("transport: call %x: %w", peer, ErrUnknownPeer)
	}
	p.mu.Lock()
	urls := slices.Clone(p.urls)
	p.mu.Unlock()
	return t.callURLs(ctx, peer, urls, method, op, req)
}

// callURLs calls a unary BytesValue method of peer's service, trying urls
// in order until one answers, with this member's identity in the metadata
// (and op, if not empty). A codes.Aborted status is the remote handler's
// error, returned as a *RemoteError.
func (t *GRPC) callURLs(ctx context.Context, peer uint64, urls []string, method, op string, req []byte) ([]byte, error) {
	if len(urls) == 0 {
		return nil, fmt.Errorf("transport: call %x: no URLs", peer)
	}
	md := metadata.Pairs(
		mdCluster, strconv.FormatUint(t.cfg.ClusterID, 10),
		mdFrom, strconv.FormatUint(t.cfg.LocalID, 10),
		mdTo, strconv.FormatUint(peer, 10),
	)
	if op != "" {
		md.Set(mdOp, op)
	}
	ctx = metadata.NewOutgoingContext(ctx, md)
	var lastErr error
	for _, u := range urls {
		out, err := invokeOnce(ctx, u, method, wrapperspb.Bytes(req), t.dial)
		if s, ok := status.FromError(err); ok && s.Code() == codes.Aborted {
			return nil, &RemoteError{Msg: s.Message()}
		}
		if err == nil {
			return out, nil
		}
		lastErr = err
		if s, ok := status.FromError(err); ok && s.Code() != codes.Unavailable {
			break // the peer answered: another URL would answer the same
		}
	}
	return nil, fmt.Errorf("transport: call %x: %w", peer, lastErr)
}
