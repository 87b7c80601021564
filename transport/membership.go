package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Membership answers the membership RPCs of the peer service. The member
// that owns the transport implements it; payloads are opaque here.
type Membership interface {
	// MemberList is this member's view of the cluster for a member that is
	// joining it (which knows neither its own ID nor the cluster's yet).
	MemberList(ctx context.Context) ([]byte, error)
	// MemberChange carries out a membership change (op names it, req is
	// its request) that another member forwarded to this one, normally
	// because this member leads. Its error text reaches the caller intact.
	MemberChange(ctx context.Context, op string, req []byte) ([]byte, error)
}

// ErrMemberRemoved is what a member hears when it talks to a cluster that
// removed it (etcd's text). Streams from removed members are refused with
// it, and a sender that is refused so calls Config.OnRemoved.
var ErrMemberRemoved = errors.New("the member has been permanently removed from the cluster")

// RemoteError is an error a peer's Membership returned, carried by its text.
type RemoteError struct{ Msg string }

// Error returns the remote error's text.
func (e *RemoteError) Error() string { return e.Msg }

// The unary membership methods and their metadata.
const (
	membersMethod      = "/" + serviceName + "/Members"
	memberChangeMethod = "/" + serviceName + "/MemberChange"
	mdOp               = "synod-op"
)

// membershipMethods are the unary methods of the peer service.
var membershipMethods = []grpc.MethodDesc{
	{MethodName: "Members", Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
		var in emptypb.Empty
		if err := dec(&in); err != nil {
			return nil, err
		}
		return srv.(*GRPC).serveMembers(ctx)
	}},
	{MethodName: "MemberChange", Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
		var in wrapperspb.BytesValue
		if err := dec(&in); err != nil {
			return nil, err
		}
		return srv.(*GRPC).serveMemberChange(ctx, in.Value)
	}},
}

func (t *GRPC) serveMembers(ctx context.Context) (*wrapperspb.BytesValue, error) {
	if t.cfg.Membership == nil {
		return nil, status.Error(codes.Unimplemented, "transport: membership is not served")
	}
	b, err := t.cfg.Membership.MemberList(ctx)
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return wrapperspb.Bytes(b), nil
}

func (t *GRPC) serveMemberChange(ctx context.Context, req []byte) (*wrapperspb.BytesValue, error) {
	if _, err := t.authorize(ctx); err != nil {
		return nil, err
	}
	if t.cfg.Membership == nil {
		return nil, status.Error(codes.Unimplemented, "transport: membership is not served")
	}
	md, _ := metadata.FromIncomingContext(ctx)
	ops := md.Get(mdOp)
	if len(ops) != 1 {
		return nil, status.Error(codes.InvalidArgument, "transport: member change names no operation")
	}
	b, err := t.cfg.Membership.MemberChange(ctx, ops[0], req)
	if err != nil {
		return nil, status.Error(codes.Aborted, err.Error())
	}
	return wrapperspb.Bytes(b), nil
}

// ForwardMemberChange asks peer to carry out a membership change through its
// Membership. An error the peer's Membership returned comes back as a
// *RemoteError; anything else (the peer is unknown or unreachable) as a
// plain error. It dials a connection of its own rather than using the
// peer's raft connection, which the change itself may close (removing a
// member closes every connection to it).
func (t *GRPC) ForwardMemberChange(ctx context.Context, peer uint64, op string, req []byte) ([]byte, error) {
	return t.callPeer(ctx, peer, memberChangeMethod, op, req)
}

// invokeOnce calls a unary method of the peer service at rawURL on a
// connection of its own.
func invokeOnce(ctx context.Context, rawURL, method string, in any, opts []grpc.DialOption) ([]byte, error) {
	addr, err := peerAddress(rawURL)
	if err != nil {
		return nil, err
	}
	// A resolver of its own rather than passthrough: the address keeps its
	// attributes, which say whether to dial TLS (see urlCredentials).
	res := manual.NewBuilderWithScheme(peerScheme)
	res.InitialState(resolver.State{Addresses: []resolver.Address{addr}})
	conn, err := grpc.NewClient(peerScheme+":///once", append(slices.Clip(opts), grpc.WithResolvers(res))...)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var out wrapperspb.BytesValue
	if err := conn.Invoke(ctx, method, in, &out); err != nil {
		return nil, err
	}
	return out.Value, nil
}

// FetchMembers asks the members at peerURLs, in order, for their view of
// the cluster (Membership.MemberList) and returns the first answer. A member
// that is joining uses it to learn its own ID and the cluster's.
func FetchMembers(ctx context.Context, peerURLs []string, opts ...grpc.DialOption) ([]byte, error) {
	base := []grpc.DialOption{
		DialTLS(nil),
		grpc.WithContextDialer(dialPeer),
		grpc.WithNoProxy(),
	}
	opts = append(base, opts...)
	var errs []error
	for _, u := range peerURLs {
		b, err := fetchMembers(ctx, u, opts)
		if err == nil {
			return b, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", u, err))
	}
	return nil, fmt.Errorf("transport: no peer answered with the cluster's members: %w", errors.Join(errs...))
}

func fetchMembers(ctx context.Context, rawURL string, opts []grpc.DialOption) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return invokeOnce(ctx, rawURL, membersMethod, &emptypb.Empty{}, opts)
}

// ActiveSince returns when the stream to peer id was last established, or
// the zero time when the link is down or the peer unknown (etcd's
// Transporter.ActiveSince). The strict reconfiguration checks use it.
func (t *GRPC) ActiveSince(id uint64) time.Time {
	t.mu.RLock()
	p := t.peers[id]
	t.mu.RUnlock()
	if p == nil {
		return time.Time{}
	}
	ns := p.activeSince.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// removed reports whether id was removed from the cluster.
func (t *GRPC) removed(id uint64) bool {
	return t.cfg.IsRemoved != nil && t.cfg.IsRemoved(id)
}

// refuseRemoved is the status a stream from a removed member ends with.
func (t *GRPC) refuseRemoved(from uint64) error {
	t.log.Warn("refusing stream from a removed member", slog.String("peer", hexID(from)))
	return status.Error(codes.FailedPrecondition, ErrMemberRemoved.Error())
}

// isRemovedStatus reports whether err is a peer's refusal of a removed member.
func isRemovedStatus(err error) bool {
	s, ok := status.FromError(err)
	return ok && s.Code() == codes.FailedPrecondition && s.Message() == ErrMemberRemoved.Error()
}

// noteRemoved calls Config.OnRemoved once.
func (t *GRPC) noteRemoved() {
	if t.cfg.OnRemoved != nil {
		t.removedOnce.Do(t.cfg.OnRemoved)
	}
}
