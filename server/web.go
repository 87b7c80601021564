package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"math"
	"net"
	"net/http"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/synod-db/synod/gateway"
)

// webFace is a member's HTTP side: the server of its client URLs (etcd's
// JSON gateway under /v3/ and the etcdhttp endpoints) and the server of its
// metrics URLs (the etcdhttp endpoints only, as etcd's).
type webFace struct {
	client, metrics *http.Server
	httpLns         []net.Listener     // --listen-client-http-urls
	conns           []*grpc.ClientConn // the gateway's, to this member's gRPC server
}

// listenHTTP binds --listen-client-http-urls.
func (m *Member) listenHTTP() error {
	for _, u := range m.cfg.HTTP.ListenClientHTTPURLs {
		ln, err := m.listenURL(u)
		if err != nil {
			return err
		}
		ln = m.limitClient(ln)
		if secureURL(u) {
			ln = secureListener(ln, m.tls.client, "http/1.1")
		}
		m.web.httpLns = append(m.web.httpLns, ln)
	}
	return nil
}

// startWeb builds the HTTP servers. The gateway's connections are dialed
// lazily through the in-memory self listener, so this needs no served
// listener yet.
func (m *Member) startWeb() error {
	m.web.metrics = newHTTPServer(m.httpHandler())
	h, err := m.clientHTTPHandler()
	if err != nil {
		return err
	}
	m.web.client = newHTTPServer(h)
	return nil
}

// clientHTTPHandler is what a client URL serves over HTTP/1: etcd's access
// control in front of the gateway (under /v3/) and the etcdhttp endpoints.
func (m *Member) clientHTTPHandler() (http.Handler, error) {
	mux := http.NewServeMux()
	if !m.cfg.HTTP.DisableGateway {
		gw, err := m.newGateway()
		if err != nil {
			return nil, err
		}
		mux.Handle(gateway.Prefix, gw)
	}
	mux.Handle("/", m.httpHandler())
	return gateway.Access{
		CORS:           m.cfg.HTTP.CORS,
		HostWhitelist:  m.cfg.HTTP.HostWhitelist,
		ClientCertAuth: m.cfg.ClientTLS.ClientCertAuth,
		AuthEnabled:    m.sm.Auth().Enabled,
	}.Wrap(mux), nil
}

// newGateway dials the member's gRPC server twice through the self
// listener (unary calls and streams apart) and builds the gateway on them.
func (m *Member) newGateway() (http.Handler, error) {
	var conns gateway.Conns
	for _, c := range []**grpc.ClientConn{&conns.Unary, &conns.Streams} {
		conn, err := m.dialSelf()
		if err != nil {
			return nil, err
		}
		m.web.conns = append(m.web.conns, conn)
		*c = conn
	}
	return gateway.New(context.Background(), conns, gateway.Options{
		MaxRequestBytes:    m.cfg.MaxRequestBytes,
		MaxStreams:         int(m.cfg.MaxConcurrentStreams),
		StreamWriteTimeout: m.cfg.HTTP.StreamWriteTimeout,
		Logger:             m.log,
	})
}

// dialSelf returns a gRPC connection to this member through the self
// listener: no port, no TLS, the same server as every client's.
func (m *Member) dialSelf() (*grpc.ClientConn, error) {
	dial := func(ctx context.Context, _ string) (net.Conn, error) { return m.selfLn.Dial(ctx) }
	conn, err := grpc.NewClient("passthrough:///"+selfEndpoint,
		grpc.WithContextDialer(dial),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32)))
	if err != nil {
		return nil, fmt.Errorf("server: gateway connection: %w", err)
	}
	return conn, nil
}

// stopWeb closes the HTTP servers (their listeners and connections), then
// the gateway's connections, so streams it relayed end at once.
func (m *Member) stopWeb() {
	for _, s := range []*http.Server{m.web.client, m.web.metrics} {
		if s != nil {
			s.Close()
		}
	}
	for _, c := range m.web.conns {
		c.Close()
	}
}

func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
}

// serveHTTP serves s on ln until s is closed.
func (m *Member) serveHTTP(s *http.Server, ln net.Listener) {
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		if err := s.Serve(ln); err != nil && err != http.ErrServerClosed {
			m.log.Error("serve stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
}

// serveClients serves the client URLs: gRPC and HTTP/1 on each, routed by
// the splitter, or, with --listen-client-http-urls, gRPC alone on the
// client URLs and HTTP alone on the HTTP URLs (etcd's split).
func (m *Member) serveClients() {
	split := len(m.web.httpLns) == 0
	for i, ln := range m.clientLns {
		switch {
		case !split && m.clientSec[i]:
			m.serve(m.clientSrv, secureListener(ln, m.tls.client, "h2"))
		case !split:
			m.serve(m.clientSrv, ln)
		default:
			var tc *tls.Config
			if m.clientSec[i] {
				// HTTP/1.1 first: a client that offers both (curl, browsers,
				// Go's net/http) speaks HTTP/1.1 to the gateway, while gRPC
				// clients offer only h2 and still get it. (etcd serves HTTP/2
				// requests to its gateway too; synod hands h2 connections to
				// the gRPC server whole, so it steers JSON clients to 1.1.)
				tc = m.tls.client.ServerConfig("http/1.1", "h2")
			}
			grpcLn, webLn := newSplitListener(ln, tc, m.log)
			m.serve(m.clientSrv, grpcLn)
			m.serveHTTP(m.web.client, webLn)
		}
	}
	for _, ln := range m.web.httpLns {
		m.serveHTTP(m.web.client, ln)
	}
}

// HTTPConfig is the HTTP side of a member's client URLs. Its zero value is
// etcd's default: the gateway on, every origin and host allowed, HTTP
// served on the client URLs.
type HTTPConfig struct {
	// DisableGateway turns etcd's JSON gateway off
	// (--enable-grpc-gateway=false); /health, /metrics and the others stay.
	DisableGateway bool
	// ListenClientHTTPURLs is --listen-client-http-urls: when set, HTTP
	// (the gateway, /health, /metrics, ...) is served only on these URLs
	// and the client URLs serve only gRPC.
	ListenClientHTTPURLs []string
	// CORS is --cors: the origins allowed to read HTTP responses (empty or
	// "*": all).
	CORS []string
	// HostWhitelist is --host-whitelist: the Host names accepted on
	// plaintext HTTP (empty or "*": all).
	HostWhitelist []string
	// StreamWriteTimeout is how long one write of a streaming gateway
	// response (a watch) may block on a client that does not read before
	// the client is disconnected; 0 means gateway.DefaultStreamWriteTimeout.
	// No flag: tests shorten it.
	StreamWriteTimeout time.Duration
}
