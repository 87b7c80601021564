package transport

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Stream reconnect backoff bounds.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// peerScheme is the scheme of the per-peer manual resolver.
const peerScheme = "synod-peer"

// peer is one remote member of a GRPC transport. Its sender goroutine (run)
// is the only reader of queue and the only user of the Raft stream;
// snapshot goroutines share conn. conn, res, outCtx and queue are fixed at
// creation; urls is guarded by mu.
type peer struct {
	id  uint64
	t   *GRPC
	log *slog.Logger

	queue  chan *raftpb.Message
	ctx    context.Context // canceled by stop
	cancel context.CancelFunc
	outCtx context.Context // ctx with the outgoing stream metadata
	done   chan struct{}   // closed when run returns

	res     *manual.Resolver
	conn    *grpc.ClientConn // nil if the client could not be created
	connErr error

	mu   sync.Mutex
	urls []string

	activeSince atomic.Int64 // unix nanos the stream came up; 0 while down

	// Owned by the sender goroutine.
	state     linkState
	carry     *raftpb.Message // taken from queue, goes first in the next batch
	batchHint int             // capacity for the next batch buffer
}

type linkState uint8

const (
	linkUnknown linkState = iota
	linkUp
	linkDown
)

func newPeer(t *GRPC, id uint64, urls []string) *peer {
	ctx, cancel := context.WithCancel(t.ctx)
	md := metadata.Pairs(
		mdCluster, strconv.FormatUint(t.cfg.ClusterID, 10),
		mdFrom, strconv.FormatUint(t.cfg.LocalID, 10),
		mdTo, strconv.FormatUint(id, 10),
	)
	p := &peer{
		id:     id,
		t:      t,
		log:    t.log.With(slog.String("peer", hexID(id))),
		queue:  make(chan *raftpb.Message, t.cfg.QueueSize),
		ctx:    ctx,
		cancel: cancel,
		outCtx: metadata.NewOutgoingContext(ctx, md),
		done:   make(chan struct{}),
		res:    manual.NewBuilderWithScheme(peerScheme),
		urls:   slices.Clone(urls),
	}
	p.res.InitialState(p.resolverState(urls))
	opts := append(slices.Clip(t.dial), grpc.WithResolvers(p.res))
	p.conn, p.connErr = grpc.NewClient(peerScheme+":///"+hexID(id), opts...)
	if p.connErr != nil {
		p.log.Error("cannot create peer client", slog.Any("err", p.connErr))
	}
	return p
}

// resolverState converts urls, logging the unusable ones.
func (p *peer) resolverState(urls []string) resolver.State {
	addrs, errs := peerAddresses(urls)
	for _, err := range errs {
		p.log.Error("ignoring peer URL", slog.Any("err", err))
	}
	return resolver.State{Addresses: addrs}
}

// setURLs replaces the peer's URLs if they changed. gRPC moves the
// connection; a stream on a dropped address breaks and is reopened.
func (p *peer) setURLs(urls []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if slices.Equal(p.urls, urls) {
		return
	}
	p.urls = slices.Clone(urls)
	p.res.UpdateState(p.resolverState(urls))
}

// stop cancels the peer's streams, waits for the sender and closes the
// connection. Queued messages are dropped without reports.
func (p *peer) stop() {
	p.cancel()
	<-p.done
	if p.conn != nil {
		_ = p.conn.Close()
	}
}

// run is the sender goroutine: stream sessions separated by backoff.
func (p *peer) run() {
	defer close(p.done)
	var bo retryBackoff
	for {
		err := p.session(&bo)
		if p.ctx.Err() != nil {
			return
		}
		p.setState(linkDown, err)
		if isRemovedStatus(err) {
			p.log.Error("peer refused this member: " + ErrMemberRemoved.Error())
			p.t.noteRemoved()
		}
		p.t.report.unreachable(p.id)
		if !p.discardFor(bo.next()) {
			return
		}
	}
}

// session opens one Raft stream and pumps the queue into it until it
// breaks, returning why.
func (p *peer) session(bo *retryBackoff) error {
	cs, cancel, err := p.open()
	if err != nil {
		return err
	}
	defer cancel()
	bo.reset()
	p.setState(linkUp, nil)
	end := watchEnd(cs)
	err = p.pump(cs, end)
	cancel()
	<-end.done
	p.carry = nil
	if errors.Is(err, io.EOF) || err == nil {
		// SendMsg reports a finished stream as io.EOF; the status says why.
		err = end.err
	}
	return err
}

// open starts a Raft stream and waits for the receiver to accept it, all
// within connectTimeout. The returned cancel ends the stream.
func (p *peer) open() (grpc.ClientStream, context.CancelFunc, error) {
	if p.conn == nil {
		return nil, nil, p.connErr
	}
	ctx, cancel := context.WithCancel(p.outCtx)
	timer := time.AfterFunc(connectTimeout, cancel)
	cs, err := p.conn.NewStream(ctx, &serviceDesc.Streams[raftStream], raftMethod)
	if err == nil {
		err = awaitAccept(cs)
	}
	if !timer.Stop() {
		err = errConnectTimeout
	}
	if err != nil {
		cancel()
		return nil, nil, err
	}
	return cs, cancel, nil
}

var (
	errConnectTimeout = errors.New("transport: timed out opening stream")
	errStreamEnded    = errors.New("transport: receiver ended the stream")
)

// awaitAccept waits for the receiver's accept header. Without it the
// stream failed; its status (e.g. PermissionDenied) is the error.
func awaitAccept(cs grpc.ClientStream) error {
	md, _ := cs.Header() // on failure Header returns nil, nil
	if len(md.Get(mdAccepted)) > 0 {
		return nil
	}
	var e emptypb.Empty
	if err := cs.RecvMsg(&e); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return errStreamEnded
}

// streamEnd is closed when the receiver ends a Raft stream (it never sends
// messages on it), which detects a broken stream while the queue is idle.
type streamEnd struct {
	done chan struct{}
	err  error // valid after done is closed
}

func watchEnd(cs grpc.ClientStream) *streamEnd {
	end := &streamEnd{done: make(chan struct{})}
	go func() {
		defer close(end.done)
		var e emptypb.Empty
		err := cs.RecvMsg(&e)
		if err == nil || errors.Is(err, io.EOF) {
			err = errStreamEnded
		}
		end.err = err
	}()
	return end
}

// pump sends batches until the stream or the peer ends.
func (p *peer) pump(cs grpc.ClientStream, end *streamEnd) error {
	for {
		first := p.carry
		p.carry = nil
		if first == nil {
			select {
			case first = <-p.queue:
			case <-end.done:
				return nil
			case <-p.ctx.Done():
				return p.ctx.Err()
			}
		}
		batch := p.fill(first)
		if len(batch) == 0 {
			continue
		}
		// A fresh buffer per batch: gRPC may use a sent message lazily.
		if err := cs.SendMsg(&wrapperspb.BytesValue{Value: batch}); err != nil {
			return err
		}
	}
}

// fill encodes first and then everything already queued, up to about
// maxBatchBytes, without waiting. A message that would overflow a
// non-empty batch is carried over to the next one.
func (p *peer) fill(first *raftpb.Message) []byte {
	buf := make([]byte, 0, p.batchHint)
	buf = p.appendMsg(buf, first)
	for len(buf) < maxBatchBytes {
		select {
		case m := <-p.queue:
			before := len(buf)
			buf = p.appendMsg(buf, m)
			if len(buf) > maxBatchBytes && before > 0 {
				p.carry = m
				p.batchHint = maxBatchBytes
				return buf[:before]
			}
		default:
			p.batchHint = min(max(len(buf), 512), maxBatchBytes)
			return buf
		}
	}
	p.batchHint = maxBatchBytes
	return buf
}

// appendMsg encodes m into buf; an unencodable message is dropped.
func (p *peer) appendMsg(buf []byte, m *raftpb.Message) []byte {
	buf, err := appendBatchMsg(buf, m)
	if err != nil {
		p.log.Error("dropping unencodable message", slog.Any("err", err))
		p.t.report.unreachable(p.id)
	}
	return buf
}

// discardFor waits d while dropping (and reporting) everything queued. It
// returns false if the peer was stopped.
func (p *peer) discardFor(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
			return true
		case <-p.ctx.Done():
			return false
		case <-p.queue:
			p.drainQueue()
			p.t.report.unreachable(p.id)
		}
	}
}

func (p *peer) drainQueue() {
	for {
		select {
		case <-p.queue:
		default:
			return
		}
	}
}

// setState logs link state transitions (only transitions, to avoid noise).
func (p *peer) setState(s linkState, err error) {
	if s == p.state {
		return
	}
	p.state = s
	if s == linkUp {
		p.activeSince.Store(time.Now().UnixNano())
	} else {
		p.activeSince.Store(0)
	}
	if s == linkUp {
		p.log.Info("peer stream established")
	} else {
		p.log.Warn("peer stream down", slog.Any("err", err))
	}
}

// retryBackoff is jittered exponential backoff from minBackoff to maxBackoff.
type retryBackoff struct{ d time.Duration }

// next returns the next wait: uniform in [d/2, d], d doubling each time.
func (b *retryBackoff) next() time.Duration {
	if b.d == 0 {
		b.d = minBackoff
	} else {
		b.d = min(2*b.d, maxBackoff)
	}
	return b.d/2 + rand.N(b.d/2+1)
}

func (b *retryBackoff) reset() { b.d = 0 }
