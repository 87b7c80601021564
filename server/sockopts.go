package server

import (
	"context"
	"fmt"
	"net"
	"net/url"
)

// listenURL listens on a listen URL (tcp for http/https, a socket file for
// unix/unixs) with the socket options of --socket-reuse-port and
// --socket-reuse-address on tcp listeners.
func (m *Member) listenURL(raw string) (net.Listener, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("server: %q: %w", raw, err)
	}
	network, addr := "tcp", u.Host
	lc := net.ListenConfig{Control: m.cfg.socketControl()}
	if u.Scheme == "unix" || u.Scheme == "unixs" {
		network, lc = "unix", net.ListenConfig{}
	}
	ln, err := lc.Listen(context.Background(), network, addr)
	if err != nil {
		return nil, fmt.Errorf("server: listen on %s: %w", raw, err)
	}
	return ln, nil
}
