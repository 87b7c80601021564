package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"
)

// http2Preface starts every HTTP/2 connection, and so every gRPC one.
var http2Preface = []byte("PRI * HTTP/2.0")

// sniffTimeout bounds how long a new connection may take to send the bytes
// that tell gRPC from HTTP/1; a silent connection is closed after it.
const sniffTimeout = 10 * time.Second

// splitListener serves gRPC and HTTP/1 (health, metrics) on one client port,
// as etcd does with cmux: each accepted connection is routed by its first
// bytes to the gRPC or the HTTP child listener. Closing either child closes
// the parent.
//
// On an https:// port the splitter terminates TLS first and routes by the
// protocol the client negotiated with ALPN: "h2" to gRPC, anything else
// (http/1.1, or none) to HTTP. The children then hand out *tls.Conn values
// whose handshake is done, so gRPC (tlsconfig.Terminated) and net/http
// both see the client's certificate.
type splitListener struct {
	parent    net.Listener
	tls       *tls.Config // nil: plaintext, route by the HTTP/2 preface
	log       *slog.Logger
	grpc, web *childListener
	once      sync.Once
}

// newSplitListener starts routing ln's connections; the caller serves gRPC
// on grpcLn and HTTP on webLn. tc, if not nil, is the TLS configuration to
// terminate connections with (it must offer "h2" and "http/1.1").
func newSplitListener(ln net.Listener, tc *tls.Config, log *slog.Logger) (grpcLn, webLn net.Listener) {
	s := &splitListener{parent: ln, tls: tc, log: log}
	s.grpc = &childListener{s: s, conns: make(chan net.Conn), done: make(chan struct{})}
	s.web = &childListener{s: s, conns: make(chan net.Conn), done: s.grpc.done}
	go s.accept()
	return s.grpc, s.web
}

func (s *splitListener) accept() {
	for {
		c, err := s.parent.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.close()
			return
		}
		if s.tls != nil {
			go s.routeTLS(c)
		} else {
			go s.route(c)
		}
	}
}

// route reads just enough of c to classify it, then hands it to a child
// with the bytes read still in front.
func (s *splitListener) route(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(sniffTimeout))
	br := bufio.NewReaderSize(c, len(http2Preface))
	head, err := br.Peek(len(http2Preface))
	_ = c.SetReadDeadline(time.Time{})
	if err != nil && len(head) == 0 {
		c.Close()
		return
	}
	to := s.web
	if bytes.Equal(head, http2Preface) {
		to = s.grpc
	}
	to.deliver(&peekedConn{Conn: c, r: br})
}

// routeTLS completes the TLS handshake on c (within sniffTimeout) and
// routes it by the negotiated application protocol. A client that fails
// the handshake (plaintext, an untrusted or missing client certificate) is
// disconnected.
func (s *splitListener) routeTLS(c net.Conn) {
	tc := tls.Server(c, s.tls)
	ctx, cancel := context.WithTimeout(context.Background(), sniffTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		s.log.Debug("client TLS handshake failed", "remote", c.RemoteAddr().String(), "err", err)
		c.Close()
		return
	}
	to := s.web
	if tc.ConnectionState().NegotiatedProtocol == "h2" {
		to = s.grpc
	}
	to.deliver(tc)
}

func (s *splitListener) close() {
	s.once.Do(func() {
		close(s.grpc.done)
		s.parent.Close()
	})
}

// childListener is one side of a splitListener.
type childListener struct {
	s     *splitListener
	conns chan net.Conn
	done  chan struct{}
}

// deliver hands c to the side's Accept, or closes it if the side closed.
func (l *childListener) deliver(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}

// Accept returns the next connection routed to this side.
func (l *childListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close closes both sides and the parent listener.
func (l *childListener) Close() error {
	l.s.close()
	return nil
}

// Addr is the parent's address.
func (l *childListener) Addr() net.Addr { return l.s.parent.Addr() }

// peekedConn is a connection whose first bytes were read into r.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
