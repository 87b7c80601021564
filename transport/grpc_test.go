package transport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

const testCluster = 0xc1

// member is one GRPC transport with its own peer server.
type member struct {
	id   uint64
	tr   *GRPC
	rec  *recorder
	addr string // network address the server listens on
	url  string
	srv  *grpc.Server
	opts []grpc.ServerOption
}

// startMember starts a transport for id in cluster on a loopback listener.
func startMember(t *testing.T, id, cluster uint64, cfg Config, opts ...grpc.ServerOption) *member {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := &member{id: id, rec: newRecorder(), addr: lis.Addr().String(), opts: opts}
	m.url = "http://" + m.addr
	cfg.LocalID, cfg.ClusterID, cfg.Handler = id, cluster, m.rec
	m.tr = NewGRPC(cfg)
	m.serve(t, lis)
	t.Cleanup(func() {
		m.tr.Close()
		m.srv.Stop()
	})
	return m
}

// serve runs a new peer server for m on lis.
func (m *member) serve(t *testing.T, lis net.Listener) {
	t.Helper()
	m.srv = grpc.NewServer(m.opts...)
	m.tr.Register(m.srv)
	srv := m.srv
	go func() { _ = srv.Serve(lis) }()
}

// pair starts members 1 and 2 of one cluster, each knowing the other.
func pair(t *testing.T, cfg Config, opts ...grpc.ServerOption) (a, b *member) {
	t.Helper()
	a = startMember(t, 1, testCluster, cfg, opts...)
	b = startMember(t, 2, testCluster, cfg, opts...)
	a.tr.AddPeer(2, []string{b.url})
	b.tr.AddPeer(1, []string{a.url})
	return a, b
}

func TestGRPCDeliversInOrder(t *testing.T) {
	a, b := pair(t, Config{})
	sendUntil(t, a.tr, 1, 2, b.rec) // stream established
	b.rec.clearMsgs()

	const n = 3000 // < DefaultQueueSize: nothing may be dropped
	rng := rand.New(rand.NewPCG(1, 2))
	var want []*raftpb.Message
	for i := 0; i < n; {
		k := min(1+rng.IntN(64), n-i)
		batch := make([]*raftpb.Message, k)
		for j := range batch {
			var payload []byte
			if rng.IntN(4) == 0 {
				payload = bytes.Repeat([]byte{byte(i + j)}, rng.IntN(4096))
			}
			batch[j] = msg(1, 2, uint64(i+j), payload)
			want = append(want, proto.CloneOf(batch[j]))
		}
		a.tr.Send(batch)
		i += k
	}
	got := b.rec.waitMsgs(t, n)
	if len(got) != n {
		t.Fatalf("got %d messages, want %d", len(got), n)
	}
	for i := range got {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("message %d: got %v, want %v", i, got[i], want[i])
		}
	}
	if c := a.rec.unreachableCount(2); c != 0 {
		t.Errorf("ReportUnreachable(2) called %d times on a healthy link", c)
	}

	// And the other direction.
	sendUntil(t, b.tr, 2, 1, a.rec)
}

func TestGRPCSendNeverBlocksWhenQueueFull(t *testing.T) {
	// A fixed 64 KiB flow-control window on the receiver: once Process
	// blocks, gRPC stops accepting data, the sender's writes stall and its
	// queue fills up.
	a, b := pair(t, Config{QueueSize: 64},
		grpc.InitialWindowSize(64<<10), grpc.InitialConnWindowSize(64<<10))
	sendUntil(t, a.tr, 1, 2, b.rec)
	b.rec.clearMsgs()
	release := b.rec.block()
	defer release()

	const n = 2000 // 2000 * 8 KiB: far more than windows + queue hold
	payload := bytes.Repeat([]byte{'x'}, 8<<10)
	done := make(chan time.Duration, 1)
	go func() {
		var slowest time.Duration
		for i := range n {
			start := time.Now()
			a.tr.Send([]*raftpb.Message{msg(1, 2, uint64(i), payload)})
			slowest = max(slowest, time.Since(start))
		}
		done <- slowest
	}()
	select {
	case slowest := <-done:
		// Generous bound for -race on loaded machines; a blocking Send would
		// never return while the receiver is blocked.
		if slowest > time.Second {
			t.Errorf("slowest Send took %v", slowest)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Send blocked while the receiver was back-pressuring")
	}
	a.rec.waitUnreachable(t, 2)
	b.rec.waitFor(t, "a blocked Process call", func(r *recorder) bool { return r.blocked > 0 })
	release()

	sendUntil(t, a.tr, 1, 2, b.rec)
	got := b.rec.snapshotMsgs()
	var burst []uint64
	for _, m := range got {
		if !isMarker(m) {
			burst = append(burst, m.GetIndex())
		}
	}
	if len(burst) == 0 || len(burst) >= n {
		t.Fatalf("received %d of %d burst messages; want some, but not all", len(burst), n)
	}
	for i := 1; i < len(burst); i++ {
		if burst[i] <= burst[i-1] {
			t.Fatalf("out of order: index %d after %d", burst[i], burst[i-1])
		}
	}
}

func TestGRPCReconnectsAfterReceiverRestart(t *testing.T) {
	a, b := pair(t, Config{})
	sendUntil(t, a.tr, 1, 2, b.rec)

	b.srv.Stop()
	a.rec.waitUnreachable(t, 2) // the broken stream is noticed while idle
	lis, err := net.Listen("tcp", b.addr)
	if err != nil {
		t.Fatalf("relisten on %s: %v", b.addr, err)
	}
	b.serve(t, lis)
	b.rec.clearMsgs()
	sendUntil(t, a.tr, 1, 2, b.rec)
}

func TestGRPCRejectsOtherCluster(t *testing.T) {
	a := startMember(t, 1, 0xbad, Config{})
	b := startMember(t, 2, testCluster, Config{})
	a.tr.AddPeer(2, []string{b.url})
	a.tr.Send([]*raftpb.Message{msg(1, 2, 1, nil)})
	a.rec.waitUnreachable(t, 2)

	cc, err := grpc.NewClient("passthrough:///"+b.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	cases := []struct {
		name string
		md   metadata.MD
		want codes.Code
	}{
		{"other cluster", metadata.Pairs(mdCluster, "2989", mdFrom, "1", mdTo, "2"), codes.PermissionDenied},
		{"no cluster", metadata.Pairs(mdFrom, "1", mdTo, "2"), codes.PermissionDenied},
		{"other member", metadata.Pairs(mdCluster, "193", mdFrom, "1", mdTo, "3"), codes.FailedPrecondition},
		{"no sender", metadata.Pairs(mdCluster, "193", mdTo, "2"), codes.InvalidArgument},
	}
	for _, tc := range cases {
		for i, method := range []string{raftMethod, snapshotMethod} {
			ctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(context.Background(), tc.md), waitTimeout)
			cs, err := cc.NewStream(ctx, &serviceDesc.Streams[i], method)
			if err == nil {
				err = awaitAccept(cs)
			}
			cancel()
			if got := status.Code(err); got != tc.want {
				t.Errorf("%s, %s: got %v (%v), want %v", tc.name, method, got, err, tc.want)
			}
		}
	}
	if got := len(b.rec.snapshotMsgs()); got != 0 {
		t.Errorf("member of another cluster processed %d messages", got)
	}
	// The right cluster is accepted (guards against a test that rejects all).
	ctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(context.Background(),
		metadata.Pairs(mdCluster, "193", mdFrom, "1", mdTo, "2")), waitTimeout)
	defer cancel()
	cs, err := cc.NewStream(ctx, &serviceDesc.Streams[raftStream], raftMethod)
	if err == nil {
		err = awaitAccept(cs)
	}
	if err != nil {
		t.Fatalf("stream with the right cluster rejected: %v", err)
	}
}

func TestGRPCSnapshotStreamsInChunks(t *testing.T) {
	a, b := pair(t, Config{})
	body := randomBytes(10<<20+12345, 3)

	var (
		mu      sync.Mutex
		got     []byte
		largest int
		head    *raftpb.Message
	)
	b.rec.onSnapshot = func(m *raftpb.Message, r io.Reader) error {
		buf := make([]byte, 4<<20)
		var data []byte
		big := 0
		for {
			n, err := r.Read(buf)
			big = max(big, n)
			data = append(data, buf[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
		}
		mu.Lock()
		got, largest, head = data, big, m
		mu.Unlock()
		return nil
	}

	snap := snapMsg(1, 2)
	done := make(chan error, 1)
	a.tr.SendSnapshot(proto.CloneOf(snap), bytes.NewReader(body), func(err error) { done <- err })
	if err := waitDone(t, done); err != nil {
		t.Fatalf("done(%v), want nil", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !bytes.Equal(got, body) {
		t.Fatalf("receiver got %d bytes, differing from the %d sent", len(got), len(body))
	}
	if largest > ChunkSize {
		t.Fatalf("receiver saw a %d byte chunk, max %d", largest, ChunkSize)
	}
	if !proto.Equal(head, snap) {
		t.Fatalf("receiver got header %v, want %v", head, snap)
	}
	if rep := a.rec.waitSnapReport(t); rep != (snapReport{2, false}) {
		t.Fatalf("ReportSnapshot%v, want (2, false)", rep)
	}
}

func TestGRPCSnapshotRejected(t *testing.T) {
	a, b := pair(t, Config{})
	b.rec.onSnapshot = func(m *raftpb.Message, r io.Reader) error {
		if _, err := io.CopyN(io.Discard, r, 100); err != nil {
			return err
		}
		return errors.New("disk full")
	}
	done := make(chan error, 1)
	body := bytes.NewReader(make([]byte, 5<<20))
	a.tr.SendSnapshot(snapMsg(1, 2), body, func(err error) { done <- err })
	err := waitDone(t, done)
	if !errors.Is(err, ErrSnapshotRejected) || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("done(%v), want ErrSnapshotRejected with the receiver's reason", err)
	}
	if rep := a.rec.waitSnapReport(t); rep != (snapReport{2, true}) {
		t.Fatalf("ReportSnapshot%v, want (2, true)", rep)
	}
}

func TestGRPCSnapshotBodyFailureAbortsStream(t *testing.T) {
	a, b := pair(t, Config{})
	recvErr := make(chan error, 1)
	b.rec.onSnapshot = func(m *raftpb.Message, r io.Reader) error {
		_, err := io.Copy(io.Discard, r)
		recvErr <- err
		return err
	}
	done := make(chan error, 1)
	body := failingBody{good: 3 << 20, err: errors.New("pebble iterator failed")}
	a.tr.SendSnapshot(snapMsg(1, 2), body, func(err error) { done <- err })
	if err := waitDone(t, done); err == nil || !strings.Contains(err.Error(), "pebble iterator failed") {
		t.Fatalf("done(%v), want the body's error", err)
	}
	if err := waitDone(t, recvErr); err == nil {
		t.Fatal("receiver read a truncated body as complete")
	}
	if rep := a.rec.waitSnapReport(t); !rep.failed {
		t.Fatalf("ReportSnapshot%v, want failed", rep)
	}
}

func TestGRPCSnapshotToUnknownPeer(t *testing.T) {
	a := startMember(t, 1, testCluster, Config{})
	done := make(chan error, 1)
	a.tr.SendSnapshot(snapMsg(1, 9), bytes.NewReader(nil), func(err error) { done <- err })
	if err := waitDone(t, done); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("done(%v), want ErrUnknownPeer", err)
	}
	if rep := a.rec.waitSnapReport(t); rep != (snapReport{9, true}) {
		t.Fatalf("ReportSnapshot%v, want (9, true)", rep)
	}
}

func TestGRPCSendMisuseAndUnknownPeer(t *testing.T) {
	a := startMember(t, 1, testCluster, Config{})
	a.tr.Send([]*raftpb.Message{msg(1, 7, 1, nil), snapMsg(1, 8)})
	a.rec.waitUnreachable(t, 7)
	if rep := a.rec.waitSnapReport(t); rep != (snapReport{8, true}) {
		t.Fatalf("ReportSnapshot%v, want (8, true) for a MsgSnap given to Send", rep)
	}
}

func TestGRPCUnixSocketAndPeerUpdates(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "b.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	b := &member{id: 2, rec: newRecorder()}
	b.tr = NewGRPC(Config{LocalID: 2, ClusterID: testCluster, Handler: b.rec})
	b.serve(t, lis)
	t.Cleanup(func() { b.tr.Close(); b.srv.Stop() })

	a := startMember(t, 1, testCluster, Config{})
	// First an unusable URL, then (idempotent re-add) the real one.
	a.tr.AddPeer(2, []string{"unix://" + filepath.Join(dir, "missing.sock")})
	a.tr.AddPeer(2, []string{"unix://" + sock})
	a.tr.AddPeer(2, []string{"unix://" + sock})
	sendUntil(t, a.tr, 1, 2, b.rec)

	a.tr.RemovePeer(2)
	before := a.rec.unreachableCount(2)
	a.tr.Send([]*raftpb.Message{msg(1, 2, 5, nil)})
	a.rec.waitFor(t, "report for a removed peer", func(r *recorder) bool { return r.unreachable[2] > before })
}

func TestGRPCCloseStopsHandlerCalls(t *testing.T) {
	a, b := pair(t, Config{})
	sendUntil(t, a.tr, 1, 2, b.rec)
	snapStarted := make(chan struct{})
	b.rec.onSnapshot = func(m *raftpb.Message, r io.Reader) error {
		close(snapStarted)
		_, err := io.Copy(io.Discard, r)
		return err
	}
	done := make(chan error, 1)
	a.tr.SendSnapshot(snapMsg(1, 2), endlessBody{}, func(err error) { done <- err })
	waitDone(t, snapStarted)

	if err := b.tr.Close(); err != nil {
		t.Fatal(err)
	}
	n := len(b.rec.snapshotMsgs())
	a.tr.Send([]*raftpb.Message{msg(1, 2, 1, nil)})
	if err := waitDone(t, done); err == nil {
		t.Fatal("snapshot to a closed member succeeded")
	}
	a.rec.waitUnreachable(t, 2)
	if got := len(b.rec.snapshotMsgs()); got != n {
		t.Fatalf("Process called %d times after Close", got-n)
	}
	if err := b.tr.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
}

func TestPeerAddress(t *testing.T) {
	cases := []struct{ in, addr, server string }{
		{"http://127.0.0.1:12380", "127.0.0.1:12380", "127.0.0.1"},
		{"https://node1.example:2380", "node1.example:2380", "node1.example"},
		{"http://[::1]:2380", "[::1]:2380", "::1"},
		{"10.0.0.1:2380", "10.0.0.1:2380", "10.0.0.1"},
		{"unix:///tmp/peer.sock", "unix:/tmp/peer.sock", ""},
		{"unix://localhost:12380", "unix:localhost:12380", ""},
		{"unixs://rel.sock", "unix:rel.sock", ""},
	}
	for _, c := range cases {
		a, err := peerAddress(c.in)
		if err != nil || a.Addr != c.addr || a.ServerName != c.server {
			t.Errorf("peerAddress(%q) = %q, %q, %v; want %q, %q", c.in, a.Addr, a.ServerName, err, c.addr, c.server)
		}
	}
	for _, bad := range []string{"ftp://x:1", "http://", "unix://", "nohostport", "http://%zz"} {
		if _, err := peerAddress(bad); err == nil {
			t.Errorf("peerAddress(%q) accepted", bad)
		}
	}
}

func TestBackoffBounds(t *testing.T) {
	var b retryBackoff
	prevMax := time.Duration(0)
	for i := range 20 {
		d := b.next()
		if d < minBackoff/2 || d > maxBackoff {
			t.Fatalf("step %d: %v outside [%v, %v]", i, d, minBackoff/2, maxBackoff)
		}
		prevMax = max(prevMax, d)
	}
	if prevMax < maxBackoff/2 {
		t.Fatalf("backoff never grew past %v", prevMax)
	}
	b.reset()
	if d := b.next(); d > minBackoff {
		t.Fatalf("after reset: %v > %v", d, minBackoff)
	}
}

func snapMsg(from, to uint64) *raftpb.Message {
	return &raftpb.Message{
		Type: raftpb.MessageType_MsgSnap.Enum(),
		From: proto.Uint64(from),
		To:   proto.Uint64(to),
		Term: proto.Uint64(3),
		Snapshot: &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{
			Index:     proto.Uint64(100),
			Term:      proto.Uint64(3),
			ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}},
		}},
	}
}

// waitDone waits for one value from ch.
func waitDone[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTimeout):
		t.Fatal("timed out")
		panic("unreachable")
	}
}

// failingBody writes good zero bytes and then fails.
type failingBody struct {
	good int
	err  error
}

func (f failingBody) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(make([]byte, f.good))
	if err != nil {
		return int64(n), err
	}
	return int64(n), f.err
}

// endlessBody writes until a Write fails.
type endlessBody struct{}

func (endlessBody) WriteTo(w io.Writer) (int64, error) {
	buf := make([]byte, 64<<10)
	var total int64
	for {
		n, err := w.Write(buf)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
}

// countingListener counts the Write calls of the connections it accepts.
type countingListener struct {
	net.Listener
	writes atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, n: &l.writes}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.n.Add(1)
	return c.Conn.Write(p)
}

// TestGRPCReceiverWritesNothingPerMessage: a peer server built with
// ServerOptions receives a stream of raft messages, one HTTP/2 frame each,
// without writing back per message. gRPC's bandwidth-delay estimator (on
// unless the window is fixed) sends a PING for nearly every frame it
// receives, which cost a write and a read on each side per raft message.
func TestGRPCReceiverWritesNothingPerMessage(t *testing.T) {
	a := startMember(t, 1, testCluster, Config{}, ServerOptions()...)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: lis}
	b := &member{id: 2, rec: newRecorder(), addr: lis.Addr().String(), opts: ServerOptions()}
	b.url = "http://" + b.addr
	b.tr = NewGRPC(Config{LocalID: 2, ClusterID: testCluster, Handler: b.rec})
	b.serve(t, cl)
	t.Cleanup(func() { b.tr.Close(); b.srv.Stop() })
	a.tr.AddPeer(2, []string{b.url})
	sendUntil(t, a.tr, 1, 2, b.rec) // stream established
	b.rec.clearMsgs()

	const n = 200
	before := cl.writes.Load()
	for i := 1; i <= n; i++ { // one at a time: each its own DATA frame
		a.tr.Send([]*raftpb.Message{msg(1, 2, uint64(i), []byte("entry"))})
		b.rec.waitMsgs(t, i)
	}
	if w := cl.writes.Load() - before; w > n/10 {
		t.Fatalf("receiver wrote %d times for %d messages; want almost none (no per-message PING)", w, n)
	}
}

// inPlaceBody writes data in pieces of 1 to 5000 bytes, each built in the
// writer's free space (AvailableBuffer) when it fits there, as mvcc's
// Snapshot.WriteTo does, and written the ordinary way when it does not.
type inPlaceBody struct{ data []byte }

func (b inPlaceBody) WriteTo(w io.Writer) (int64, error) {
	bw, ok := w.(interface{ AvailableBuffer() []byte })
	if !ok {
		return 0, errors.New("the writer has no buffer of its own")
	}
	var total int64
	for rest, i := b.data, 0; len(rest) > 0; i++ {
		p := rest[:min(len(rest), 1+i*7919%5000)]
		rest = rest[len(p):]
		if buf := bw.AvailableBuffer(); cap(buf) >= len(p) {
			p = append(buf, p...)
		}
		n, err := w.Write(p)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// TestGRPCSnapshotBodyBuiltInChunks: a body built in the chunks themselves
// arrives intact, in chunks of at most ChunkSize bytes, at a peer server
// made with ServerOptions (peerCodec) and at one with gRPC's own codec.
func TestGRPCSnapshotBodyBuiltInChunks(t *testing.T) {
	for _, opts := range [][]grpc.ServerOption{ServerOptions(), nil} {
		a, b := pair(t, Config{}, opts...)
		body := randomBytes(3*ChunkSize+777, 5)
		got := readSnapshots(b.rec)
		done := make(chan error, 1)
		a.tr.SendSnapshot(snapMsg(1, 2), inPlaceBody{body}, func(err error) { done <- err })
		if err := waitDone(t, done); err != nil {
			t.Fatalf("done(%v), want nil", err)
		}
		data, largest := got()
		if !bytes.Equal(data, body) {
			t.Fatalf("receiver got %d bytes, differing from the %d sent", len(data), len(body))
		}
		if largest > ChunkSize {
			t.Fatalf("receiver saw a %d byte chunk, max %d", largest, ChunkSize)
		}
	}
}

// readSnapshots makes rec read every snapshot body whole, and returns what
// the last one held and the largest Read it made.
func readSnapshots(rec *recorder) func() ([]byte, int) {
	var (
		mu      sync.Mutex
		got     []byte
		largest int
	)
	rec.onSnapshot = func(m *raftpb.Message, r io.Reader) error {
		buf := make([]byte, 4<<20)
		var data []byte
		big := 0
		for {
			n, err := r.Read(buf)
			data, big = append(data, buf[:n]...), max(big, n)
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
		}
		mu.Lock()
		got, largest = data, big
		mu.Unlock()
		return nil
	}
	return func() ([]byte, int) {
		mu.Lock()
		defer mu.Unlock()
		return got, largest
	}
}
