package server

import (
	"net"
	"sync"
	"sync/atomic"
)

// limitListener bounds the open connections accepted from a listener
// (--max-client-connections). A connection over the limit is closed as
// soon as it is accepted, so that the client fails fast (gRPC reports
// Unavailable) instead of waiting in the kernel's backlog; accepting
// goes on. Slots are freed when connections close.
type limitListener struct {
	net.Listener
	slots    chan struct{}
	refused  atomic.Uint64
	onRefuse func(remote net.Addr)
}

// newLimitListener limits ln to max open connections (ln itself if max <= 0).
func newLimitListener(ln net.Listener, max int, onRefuse func(net.Addr)) net.Listener {
	if max <= 0 {
		return ln
	}
	return &limitListener{Listener: ln, slots: make(chan struct{}, max), onRefuse: onRefuse}
}

// Accept returns the next connection that fits under the limit.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &limitedConn{Conn: c, release: func() { <-l.slots }}, nil
		default:
			l.refused.Add(1)
			if l.onRefuse != nil {
				l.onRefuse(c.RemoteAddr())
			}
			c.Close()
		}
	}
}

// limitedConn gives its slot back once, when closed.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// limitClient applies --max-client-connections to a client listener and
// counts its refusals in synod_client_connections_refused_total.
func (m *Member) limitClient(ln net.Listener) net.Listener {
	if m.cfg.MaxClientConnections <= 0 {
		return ln
	}
	lim := newLimitListener(ln, m.cfg.MaxClientConnections, func(remote net.Addr) {
		m.log.Debug("client connection refused: --max-client-connections reached", "remote", remote.String())
	}).(*limitListener)
	m.refusedConns = append(m.refusedConns, &lim.refused)
	if len(m.refusedConns) == 1 {
		m.metrics.CounterFunc("synod_client_connections_refused_total",
			"Client connections closed at once because --max-client-connections were open.",
			func() float64 {
				var n uint64
				for _, r := range m.refusedConns {
					n += r.Load()
				}
				return float64(n)
			})
	}
	return lim
}
