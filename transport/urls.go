package transport

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"

	"google.golang.org/grpc/resolver"
)

// unixPrefix marks a resolver address that names a unix socket path.
const unixPrefix = "unix:"

// peerAddress turns a peer URL into the address the dialer understands:
//
//	http://host:port, https://host:port, host:port  -> "host:port" (TCP)
//	unix://path, unixs://path, unix:///abs/path     -> "unix:path" (unix socket)
//
// https and unixs addresses are marked for TLS (see urlCredentials).
func peerAddress(raw string) (resolver.Address, error) {
	if !strings.Contains(raw, "://") {
		if _, _, err := net.SplitHostPort(raw); err != nil {
			return resolver.Address{}, fmt.Errorf("transport: peer URL %q: %w", raw, err)
		}
		return tcpAddress(raw), nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return resolver.Address{}, fmt.Errorf("transport: peer URL %q: %w", raw, err)
	}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return resolver.Address{}, fmt.Errorf("transport: peer URL %q has no host", raw)
		}
		if u.Scheme == "https" {
			return markSecure(tcpAddress(u.Host)), nil
		}
		return tcpAddress(u.Host), nil
	case "unix", "unixs":
		path := u.Host + u.Path
		if path == "" {
			return resolver.Address{}, fmt.Errorf("transport: peer URL %q has no socket path", raw)
		}
		if u.Scheme == "unixs" {
			return markSecure(resolver.Address{Addr: unixPrefix + path}), nil
		}
		return resolver.Address{Addr: unixPrefix + path}, nil
	default:
		return resolver.Address{}, fmt.Errorf("transport: peer URL %q: unsupported scheme %q", raw, u.Scheme)
	}
}

// tcpAddress keeps the host name as ServerName for TLS verification.
func tcpAddress(hostport string) resolver.Address {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	return resolver.Address{Addr: hostport, ServerName: host}
}

// peerAddresses converts urls, skipping (and returning errors for) the
// unusable ones.
func peerAddresses(urls []string) ([]resolver.Address, []error) {
	addrs := make([]resolver.Address, 0, len(urls))
	var errs []error
	for _, raw := range urls {
		a, err := peerAddress(raw)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		addrs = append(addrs, a)
	}
	return addrs, errs
}

// dialPeer is the gRPC context dialer for addresses made by peerAddress,
// resolving host names with the system's resolver.
var dialPeer = PeerDialer(nil)

// PeerDialer returns the gRPC context dialer for peer addresses. A host
// name is resolved through r (nil: net.DefaultResolver) at every dial, so a
// peer whose name moves to another address is found again when its
// connection is re-established (gRPC reconnects through the dialer).
func PeerDialer(r *net.Resolver) func(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{Resolver: r}
	return func(ctx context.Context, addr string) (net.Conn, error) {
		if path, ok := strings.CutPrefix(addr, unixPrefix); ok {
			return d.DialContext(ctx, "unix", path)
		}
		return d.DialContext(ctx, "tcp", addr)
	}
}
