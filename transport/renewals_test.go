package transport

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// fakeRenewals answers "renewed:<req>", and fails the request "missing".
type fakeRenewals struct{}

func (fakeRenewals) PeerRenewLeases(_ context.Context, req []byte) ([]byte, error) {
	if string(req) == "missing" {
		return nil, errors.New("raftnode: not leader")
	}
	return append([]byte("renewed:"), req...), nil
}

// TestGRPCRenewLeases checks the RenewLeases RPC: answered by the peer's
// Renewals on the connection the raft stream already uses (no dial per
// call), the remote error's text intact, ErrUnimplemented from a member
// that serves none, and a refusal for another cluster's member.
func TestGRPCRenewLeases(t *testing.T) {
	var dials atomic.Int64
	dialer := PeerDialer(nil)
	counting := grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
		dials.Add(1)
		return dialer(ctx, addr)
	})
	a := startMember(t, 1, testCluster, Config{DialOptions: []grpc.DialOption{counting}})
	b := startMember(t, 2, testCluster, Config{Renewals: fakeRenewals{}})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	if _, err := a.tr.RenewLeases(ctx, 2, []byte("x")); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("renewals to an unknown peer: %v", err)
	}
	a.tr.AddPeer(2, []string{b.url})
	sendUntil(t, a.tr, 1, 2, b.rec) // the raft stream is up
	before := dials.Load()
	for range 5 {
		out, err := a.tr.RenewLeases(ctx, 2, []byte("x"))
		if err != nil || string(out) != "renewed:x" {
			t.Fatalf("RenewLeases: %q, %v", out, err)
		}
	}
	if n := dials.Load(); n != before || n == 0 {
		t.Fatalf("%d dials for the raft stream and 5 calls (%d before the calls), want the stream's connection reused", n, before)
	}
	_, err := a.tr.RenewLeases(ctx, 2, []byte("missing"))
	var re *RemoteError
	if !errors.As(err, &re) || re.Msg != "raftnode: not leader" {
		t.Fatalf("remote error: %v, want the remote text intact", err)
	}

	// A member without Renewals (an older release) refuses with Unimplemented.
	b.tr.AddPeer(1, []string{a.url})
	if _, err := b.tr.RenewLeases(ctx, 1, nil); !errors.Is(err, ErrUnimplemented) {
		t.Fatalf("renewals to a member that serves none: %v, want ErrUnimplemented", err)
	}
	// Another cluster's member is refused.
	c := startMember(t, 3, 0xbad, Config{})
	c.tr.AddPeer(2, []string{b.url})
	if _, err := c.tr.RenewLeases(ctx, 2, []byte("x")); status.Code(errors.Unwrap(err)) != codes.PermissionDenied {
		t.Fatalf("renewals from another cluster: %v, want PermissionDenied", err)
	}
}
