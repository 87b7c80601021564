package server

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/synod-db/synod/audit"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// selfEndpoint is the endpoint name of the member's client of itself; the
// dialer ignores it and connects through a pipeListener.
const selfEndpoint = "synod-self:0"

// pipeListener is a net.Listener whose connections are in-memory pipes: the
// member's client of itself (etcd's v3client) reaches the member's gRPC
// server through it without a socket, a port or TLS. It is safe for
// concurrent use.
type pipeListener struct {
	conns  chan net.Conn
	once   sync.Once
	closed chan struct{}
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

// errPipeClosed is returned by Accept and Dial once the listener is closed.
var errPipeClosed = errors.New("server: self listener closed")

// Accept waits for the next Dial.
func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, errPipeClosed
	}
}

// Dial connects to the listener, or fails when ctx ends or it is closed.
func (l *pipeListener) Dial(ctx context.Context) (net.Conn, error) {
	server, client := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.closed:
	case <-ctx.Done():
	}
	server.Close()
	client.Close()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return nil, errPipeClosed
}

// Close stops Accept and Dial; open connections are closed by their owners.
func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

// Addr names the listener.
func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return audit.InProcessNetwork }
func (pipeAddr) String() string  { return selfEndpoint }

// newSelfClient returns a clientv3 client that reaches this member's client
// API through ln, with opts added to its dial options. It connects lazily,
// so it can be created before the server serves ln.
func newSelfClient(ln *pipeListener, opts ...grpc.DialOption) (*clientv3.Client, error) {
	dial := func(ctx context.Context, _ string) (net.Conn, error) { return ln.Dial(ctx) }
	return clientv3.New(clientv3.Config{
		Endpoints:            []string{selfEndpoint},
		DialOptions:          append([]grpc.DialOption{grpc.WithContextDialer(dial)}, opts...),
		DialKeepAliveTime:    30 * time.Second,
		DialKeepAliveTimeout: 10 * time.Second,
		Logger:               zap.NewNop(),
	})
}
