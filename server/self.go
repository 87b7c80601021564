package server

import (
	"context"
	"errors"
	"net"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/synod-db/synod/audit"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/test/bufconn"
)

// selfEndpoint is the endpoint name of the member's client of itself; the
// dialer ignores it and connects through a pipeListener.
const selfEndpoint = "synod-self:0"

// pipeListener is a net.Listener whose connections are in-memory, buffered
// pipes (grpc's bufconn): the member's HTTP gateway and its client of itself
// (etcd's v3client, for Lock and Election) reach the member's gRPC server
// through it without a socket, a port or TLS. Each direction of a connection
// buffers selfPipeBuffer bytes, so the writer of an HTTP/2 frame does not
// wait for its reader to be scheduled (net.Pipe hands every write over
// synchronously): measured through the gateway with one client, puts went
// from 1.51-1.66k/s (p50 0.6 ms, p99 1.7-1.9 ms) to 1.71-1.75k/s (p50 0.5 ms,
// p99 1.6 ms) in three alternating rounds. It is safe for concurrent use.
type pipeListener struct {
	bl *bufconn.Listener
}

// selfPipeBuffer is each direction's buffer of a self connection.
const selfPipeBuffer = 256 << 10

func newPipeListener() *pipeListener {
	return &pipeListener{bl: bufconn.Listen(selfPipeBuffer)}
}

// errPipeClosed is returned by Accept and Dial once the listener is closed.
var errPipeClosed = errors.New("server: self listener closed")

// Accept waits for the next Dial.
func (l *pipeListener) Accept() (net.Conn, error) {
	c, err := l.bl.Accept()
	if err != nil {
		return nil, errPipeClosed
	}
	return selfConn{c}, nil
}

// Dial connects to the listener, or fails when ctx ends or it is closed.
func (l *pipeListener) Dial(ctx context.Context) (net.Conn, error) {
	c, err := l.bl.DialContext(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, errPipeClosed
	}
	return selfConn{c}, nil
}

// Close stops Accept and Dial; open connections are closed by their owners.
func (l *pipeListener) Close() error {
	return l.bl.Close()
}

// selfConn is a connection of the self listener; both of its ends are named
// by pipeAddr, so the gRPC server sees audit.InProcessNetwork as its peer's
// network.
type selfConn struct{ net.Conn }

// LocalAddr names the self listener.
func (selfConn) LocalAddr() net.Addr { return pipeAddr{} }

// RemoteAddr names the self listener.
func (selfConn) RemoteAddr() net.Addr { return pipeAddr{} }

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
