package audit

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

type fakeAddr struct{ network, addr string }

func (a fakeAddr) Network() string { return a.network }
func (a fakeAddr) String() string  { return a.addr }

// TestPeerAddressBelievesForwardedOnlyFromTheGateway: a request relayed by
// the member's HTTP gateway is logged with the HTTP client's address; a
// gRPC client that sends x-forwarded-for itself is logged with its own.
func TestPeerAddressBelievesForwardedOnlyFromTheGateway(t *testing.T) {
	fwd := metadata.Pairs("x-forwarded-for", "6.6.6.6, 10.1.2.3")
	cases := []struct {
		name string
		addr net.Addr
		md   metadata.MD
		want string
	}{
		{"gateway", fakeAddr{InProcessNetwork, "synod-self:0"}, fwd, "10.1.2.3 (gateway)"},
		{"self client", fakeAddr{InProcessNetwork, "synod-self:0"}, nil, "synod-self:0"},
		{"spoofing gRPC client", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 9), Port: 4000}, fwd, "127.0.0.9:4000"},
	}
	for _, c := range cases {
		ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: c.addr})
		if c.md != nil {
			ctx = metadata.NewIncomingContext(ctx, c.md)
		}
		if got := PeerAddress(ctx); got != c.want {
			t.Errorf("%s: PeerAddress = %q, want %q", c.name, got, c.want)
		}
	}
	if got := PeerAddress(context.Background()); got != "" {
		t.Errorf("no peer: %q", got)
	}
}
