package audit

import (
	"context"

	"strings"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// CertIdentity is the default Config.Identity: the common name of the
// caller's verified TLS client certificate, or "" when the connection is
// plaintext or presented no verified certificate.
func CertIdentity(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return ""
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return ""
	}
	return ti.State.VerifiedChains[0][0].Subject.CommonName
}

// InProcessNetwork is the address network of a member's in-memory self
// listener, through which its HTTP gateway (and its Lock and Election
// services) call its gRPC server.
const InProcessNetwork = "pipe"

// forwardedFor is the metadata key in which the HTTP gateway passes on the
// HTTP client's address (grpc-gateway appends it to any X-Forwarded-For the
// client sent, so the last entry is the one the member saw).
const forwardedFor = "x-forwarded-for"

// PeerAddress is the caller's network address, or "" if unknown. For a
// request relayed by the member's own HTTP gateway it is the HTTP client's
// address followed by " (gateway)"; forwarded addresses are believed only
// from the in-process listener, so a gRPC client cannot choose its own.
func PeerAddress(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return ""
	}
	if p.Addr.Network() == InProcessNetwork {
		if fwd := metadata.ValueFromIncomingContext(ctx, forwardedFor); len(fwd) > 0 {
			parts := strings.Split(fwd[len(fwd)-1], ",")
			return strings.TrimSpace(parts[len(parts)-1]) + " (gateway)"
		}
	}
	return p.Addr.String()
}
