package transport

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// Config configures a GRPC transport.
type Config struct {
	// LocalID is this member's ID; streams addressed to another ID are
	// rejected and AddPeer(LocalID, ...) is ignored.
	LocalID uint64
	// ClusterID is sent on every stream; streams from another cluster are
	// rejected with codes.PermissionDenied.
	ClusterID uint64
	// Handler receives messages and reports. Required.
	Handler Handler
	// TLS returns the TLS configuration for one connection to a peer whose
	// URL is https:// or unixs:// (called per dial, so it may hand out
	// rotated certificates). nil means Go's defaults (system roots, no
	// client certificate). Peers with http:// URLs are dialed in plaintext.
	TLS func(serverName string) *tls.Config
	// DialOptions are appended to the transport's defaults (credentials
	// that follow the URL scheme, see TLS; a dialer for tcp and unix peer URLs, reconnect backoff
	// 50 ms to 2 s, no proxy), so they can override any of them, e.g. with
	// TLS credentials. Replacing the context dialer disables unix:// URLs.
	// No keepalive is set by default (the peer server's enforcement policy
	// would have to allow it); without it a silently dead peer is noticed
	// when its flow-control window fills and the queue overflows.
	DialOptions []grpc.DialOption
	// Resolver resolves peer host names, at every dial; nil means
	// net.DefaultResolver. Tests point it at a DNS server of their own.
	Resolver *net.Resolver
	// QueueSize is the per-peer send queue capacity in messages;
	// DefaultQueueSize when zero.
	QueueSize int
	// Logger receives connection state changes and rejections; nil
	// discards them.
	Logger *slog.Logger
	// Membership answers the peer service's membership RPCs (a joining
	// member's MemberList, forwarded membership changes). nil refuses them.
	Membership Membership
	// Hasher answers the peer service's HashKV RPC (the leader's
	// corruption check). nil refuses it.
	Hasher Hasher
	// IsRemoved reports whether a member ID was removed from the cluster:
	// streams from it are refused with ErrMemberRemoved. nil means none is.
	IsRemoved func(id uint64) bool
	// OnRemoved is called (once, on a transport goroutine) when a peer
	// refuses this member's stream because the cluster removed it.
	OnRemoved func()
}

// GRPC is the production Transport: raft messages over long-lived gRPC
// streams between members. Create it with NewGRPC, install its service with
// Register, then AddPeer each remote member. All methods are safe for
// concurrent use.
//
// Per peer it runs one sender goroutine owning a bounded queue and one gRPC
// ClientConn. The sender drains whatever is queued into one batch (at most
// about 1 MiB) and writes it without waiting for any acknowledgement. When
// the stream breaks it reports the peer unreachable and retries with
// jittered exponential backoff (50 ms to 2 s), dropping (and reporting) what
// is queued meanwhile. Each SendSnapshot runs on its own goroutine and
// stream.
type GRPC struct {
	cfg    Config
	log    *slog.Logger
	report *reporter
	dial   []grpc.DialOption // defaults + cfg.DialOptions, without the resolver

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc

	mu     sync.RWMutex
	closed bool
	peers  map[uint64]*peer

	removedOnce sync.Once

	// wg counts goroutines that may call the Handler besides the senders
	// and the reporter: server stream loops and snapshot senders. Add only
	// under mu while !closed.
	wg sync.WaitGroup
}

var _ Transport = (*GRPC)(nil)

// reconnect is the gRPC connection backoff: 50 ms growing to 2 s.
var reconnect = grpc.ConnectParams{
	Backoff: backoff.Config{
		BaseDelay:  minBackoff,
		Multiplier: 1.6,
		Jitter:     0.2,
		MaxDelay:   maxBackoff,
	},
	MinConnectTimeout: connectTimeout,
}

// NewGRPC returns a transport with no peers. It panics if cfg.Handler is nil.
func NewGRPC(cfg Config) *GRPC {
	if cfg.Handler == nil {
		panic("transport: Config.Handler is nil")
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	dial := []grpc.DialOption{
		DialTLS(cfg.TLS),
		grpc.WithContextDialer(PeerDialer(cfg.Resolver)),
		grpc.WithConnectParams(reconnect),
		grpc.WithNoProxy(),
		grpc.WithInitialWindowSize(StreamWindowBytes),
		grpc.WithInitialConnWindowSize(ConnWindowBytes),
	}
	return &GRPC{
		cfg:    cfg,
		log:    log.With(slog.String("component", "transport"), slog.String("local", hexID(cfg.LocalID))),
		report: newReporter(cfg.Handler),
		dial:   append(dial, cfg.DialOptions...),
		ctx:    ctx,
		cancel: cancel,
		peers:  make(map[uint64]*peer),
	}
}

// StreamWindowBytes and ConnWindowBytes are the fixed HTTP/2 flow-control
// windows of peer links, for both ends (the peer gRPC server must use them
// too: ServerOptions). A fixed window turns off gRPC's bandwidth-delay
// estimator, which otherwise answers nearly every raft message with a PING
// and its ack: at one message per commit that was 4 of the leader's 10
// socket syscalls per put. 4 MiB per stream covers a snapshot chunk in
// flight and any append burst on loopback or a LAN.
const (
	StreamWindowBytes = 4 << 20
	ConnWindowBytes   = 8 << 20
)

// ServerOptions are the options the peer gRPC server must be created with:
// the flow-control windows above, and peerCodec, which hands a snapshot's
// chunks on without copying them.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.InitialWindowSize(StreamWindowBytes), grpc.InitialConnWindowSize(ConnWindowBytes),
		grpc.ForceServerCodecV2(peerCodec),
	}
}

// Register installs the peer service on the member's peer gRPC server. It
// may be called for several servers (e.g. after a restart of the server on
// the same address). The server's MaxRecvMsgSize (default 4 MiB) must exceed
// the largest single raft message: batches are capped near 1 MiB, but a
// larger message is sent alone.
func (t *GRPC) Register(s *grpc.Server) {
	s.RegisterService(&serviceDesc, t)
}

// Send implements Transport. It never blocks and never calls the Handler.
func (t *GRPC) Send(msgs []*raftpb.Message) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return
	}
	for _, m := range msgs {
		to := m.GetTo()
		if m.GetType() == raftpb.MessageType_MsgSnap {
			t.log.Error("MsgSnap passed to Send; use SendSnapshot", slog.String("peer", hexID(to)))
			t.report.snapshotFailed(to)
			continue
		}
		p := t.peers[to]
		if p == nil {
			t.report.unreachable(to)
			continue
		}
		select {
		case p.queue <- m:
		default:
			t.report.unreachable(to)
		}
	}
}

// SendSnapshot implements Transport. It never blocks and never calls the
// Handler or done on the caller's goroutine. done must not wait for Close.
func (t *GRPC) SendSnapshot(m *raftpb.Message, body io.WriterTo, done func(error)) {
	to := m.GetTo()
	t.mu.RLock()
	closed, p := t.closed, t.peers[to]
	if !closed {
		t.wg.Add(1)
	}
	t.mu.RUnlock()
	if closed {
		if done != nil {
			go done(ErrClosed)
		}
		return
	}
	go func() {
		defer t.wg.Done()
		var err error
		if p == nil {
			err = fmt.Errorf("transport: snapshot to %x: %w", to, ErrUnknownPeer)
		} else {
			err = t.streamSnapshot(p, m, body)
		}
		t.finishSnapshot(to, err, done)
	}()
}

// finishSnapshot reports the outcome of a snapshot send. Once the transport
// is closing the Handler is left alone and done gets ErrClosed.
func (t *GRPC) finishSnapshot(to uint64, err error, done func(error)) {
	if t.ctx.Err() != nil {
		err = fmt.Errorf("transport: snapshot to %x: %w", to, ErrClosed)
	} else {
		if err != nil {
			t.log.Warn("snapshot send failed", slog.String("peer", hexID(to)), slog.Any("err", err))
		}
		t.cfg.Handler.ReportSnapshot(to, err != nil)
	}
	if done != nil {
		done(err)
	}
}

// AddPeer implements Transport. Invalid URLs are logged and skipped.
func (t *GRPC) AddPeer(id uint64, urls []string) {
	if id == t.cfg.LocalID {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	if p := t.peers[id]; p != nil {
		p.setURLs(urls)
		return
	}
	p := newPeer(t, id, urls)
	t.peers[id] = p
	go p.run()
}

// RemovePeer implements Transport. It waits for the peer's sender goroutine
// to exit (briefly: its stream is canceled first).
func (t *GRPC) RemovePeer(id uint64) {
	t.mu.Lock()
	p := t.peers[id]
	delete(t.peers, id)
	t.mu.Unlock()
	if p != nil {
		p.stop()
	}
}

// Close implements Transport. It cancels every stream this transport opened
// or serves and waits for all of its goroutines.
func (t *GRPC) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	peers := t.peers
	t.peers = nil
	t.mu.Unlock()

	t.cancel()
	for _, p := range peers {
		p.stop()
	}
	t.wg.Wait()
	t.report.close()
	return nil
}

// enter registers a server or snapshot goroutine; false once closed.
func (t *GRPC) enter() bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return false
	}
	t.wg.Add(1)
	return true
}

// hexID formats a member ID the way etcd logs it.
func hexID(id uint64) string { return fmt.Sprintf("%x", id) }

// connectTimeout bounds opening a stream, including the receiver's accept.
const connectTimeout = 5 * time.Second
