package etcdapi

import (
	"encoding/binary"
	"net"
	"sync"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// pingCounter is a listener whose connections count the HTTP/2 PING frames
// (not PING acks) the server writes. A server's write stream is a sequence
// of frames (no connection preface), each a 9-byte header and a payload.
type pingCounter struct {
	net.Listener
	mu    sync.Mutex
	pings int
}

func (l *pingCounter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &frameConn{Conn: c, l: l}, nil
}

func (l *pingCounter) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pings
}

// frameConn parses the frame headers of what it writes.
type frameConn struct {
	net.Conn
	l   *pingCounter
	buf []byte // the unparsed tail of the write stream
}

func (c *frameConn) Write(p []byte) (int, error) {
	c.buf = append(c.buf, p...)
	for len(c.buf) >= 9 {
		n := int(c.buf[0])<<16 | int(binary.BigEndian.Uint16(c.buf[1:3]))
		if len(c.buf) < 9+n {
			break
		}
		const framePing, flagAck = 0x6, 0x1
		if c.buf[3] == framePing && c.buf[4]&flagAck == 0 {
			c.l.mu.Lock()
			c.l.pings++
			c.l.mu.Unlock()
		}
		c.buf = c.buf[9+n:]
	}
	return c.Conn.Write(p)
}

// TestServerSendsNoPingPerRequest: the client-facing server answers a
// stream of requests without PINGs of its own. gRPC's bandwidth-delay
// estimator, on unless the flow-control windows are fixed, pings the client
// on nearly every request it receives: a write and a read on both sides per
// request.
func TestServerSendsNoPingPerRequest(t *testing.T) {
	m := newFakeMember(t, Limits{})
	gs := NewGRPCServer(m.backends(), Options{Logger: newTestLogger(&logBuffer{})})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc := &pingCounter{Listener: lis}
	go func() { _ = gs.Serve(pc) }()
	t.Cleanup(gs.Stop)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{lis.Addr().String()}, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx := testCtx(t)
	const n = 200
	for i := 0; i < n; i++ {
		if _, err := cli.Put(ctx, "k", "v"); err != nil {
			t.Fatal(err)
		}
	}
	if p := pc.count(); p > n/10 {
		t.Fatalf("server sent %d PINGs over %d requests; want almost none", p, n)
	}
}
