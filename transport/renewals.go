package transport

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Renewals answers the peer service's RenewLeases RPC: a follower hands
// the lease renewals its clients sent it to the leader, whose next renewal
// entry carries them. The member that owns the transport implements it;
// payloads are opaque here. It may be called concurrently.
type Renewals interface {
	// PeerRenewLeases renews the leases of a marshaled batch and answers,
	// once the entry carrying them has applied, with a marshaled outcome.
	// Its error text reaches the caller intact (RemoteError).
	PeerRenewLeases(ctx context.Context, req []byte) ([]byte, error)
}

// ErrUnimplemented is a peer's refusal of a method it does not serve: an
// older release, or a member configured without the method's handler.
var ErrUnimplemented = errors.New("transport: the peer does not serve this method")

const renewLeasesMethod = "/" + serviceName + "/RenewLeases"

// renewLeasesMethodDesc is the unary RenewLeases method of the peer service.
var renewLeasesMethodDesc = grpc.MethodDesc{
	MethodName: "RenewLeases",
	Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
		var in wrapperspb.BytesValue
		if err := dec(&in); err != nil {
			return nil, err
		}
		return srv.(*GRPC).serveRenewLeases(ctx, in.Value)
	},
}

func (t *GRPC) serveRenewLeases(ctx context.Context, req []byte) (*wrapperspb.BytesValue, error) {
	var serve func(context.Context, []byte) ([]byte, error)
	if t.cfg.Renewals != nil {
		serve = t.cfg.Renewals.PeerRenewLeases
	}
	return t.serveBytes(ctx, "lease renewals", serve, req)
}

// RenewLeases hands a batch of renewals to peer (Renewals.PeerRenewLeases
// there) on the connection its raft messages use, and returns the outcome.
// An error the peer's Renewals returned comes back as a *RemoteError, a
// peer that does not serve the method as ErrUnimplemented, anything else
// (the peer unknown or unreachable, ctx ended) as a plain error.
func (t *GRPC) RenewLeases(ctx context.Context, peer uint64, req []byte) ([]byte, error) {
	t.mu.RLock()
	p := t.peers[peer]
	t.mu.RUnlock()
	if p == nil {
		return nil, fmt.Errorf("transport: renew leases on %x: %w", peer, ErrUnknownPeer)
	}
	if p.conn == nil {
		return nil, fmt.Errorf("transport: renew leases on %x: %w", peer, p.connErr)
	}
	md, _ := metadata.FromOutgoingContext(p.outCtx)
	var out wrapperspb.BytesValue
	err := p.conn.Invoke(metadata.NewOutgoingContext(ctx, md), renewLeasesMethod, wrapperspb.Bytes(req), &out)
	if s, ok := status.FromError(err); ok && err != nil {
		switch s.Code() {
		case codes.Aborted:
			return nil, &RemoteError{Msg: s.Message()}
		case codes.Unimplemented:
			return nil, fmt.Errorf("transport: renew leases on %x: %w: %s", peer, ErrUnimplemented, s.Message())
		}
	}
	if err != nil {
		return nil, fmt.Errorf("transport: renew leases on %x: %w", peer, err)
	}
	return out.Value, nil
}
