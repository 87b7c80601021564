// Package watch implements etcd v3 watch semantics over a member's revision
// history, independent of gRPC.
//
// A Hub holds every watcher of a member. The raft apply path calls Notify
// once per applied entry that produced events; Notify never blocks. Each
// Stream (one gRPC Watch stream) has one bounded, ordered send queue that
// carries all of its responses. A watcher is either synced (it has been
// given every event up to the hub's revision and receives new ones from
// Notify) or unsynced: created with a start revision at or below the hub's
// revision, or demoted because its stream's queue was full when Notify had
// events for it. An unsynced watcher catches up from History in its own
// goroutine, in batches, then rejoins the synced set under the hub's lock,
// only once it has everything up to the hub's revision, so it sees no gap
// and no duplicate. If the history it needs is compacted, it is cancelled
// with the compaction revision, as etcd does.
//
// Every watcher keeps next, the first revision it has not been given:
// Notify delivers a revision only to synced watchers with next <= rev, and
// catch-up reads from next. All events of one revision go in one response.
package watch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/synod-db/synod/mvcc"
)

// History is the member's revision history (*mvcc.Store).
type History interface {
	// Events returns the events from fromRev on, at most about limit, never
	// splitting a revision; mvcc.ErrCompacted if fromRev is compacted.
	Events(fromRev int64, limit int) ([]*mvccpb.Event, error)
	// Rev is the current revision.
	Rev() int64
	// CompactRev is the compaction revision.
	CompactRev() int64
}

// Errors a create request can get, as etcd words them (its CancelReason).
var (
	ErrEmptyRange   = errors.New("mvcc: watcher range is empty")
	ErrDuplicateID  = errors.New("mvcc: duplicate watch ID provided on the WatchStream")
	ErrTooManyWatch = errors.New("synod: too many watchers on one stream")
	ErrHubClosed    = errors.New("watch: hub closed")
	errStreamClosed = errors.New("watch: stream closed")
)

// ProgressWatchID is the watch ID of a stream-level progress notification
// (clientv3.InvalidWatchID).
const ProgressWatchID = -1

// Defaults of Config.
const (
	DefaultMaxWatchers      = 10000
	DefaultQueueSize        = 256
	DefaultProgressInterval = 10 * time.Minute
	DefaultCatchUpBatch     = 1000
)

// Config bounds a hub. Zero fields take the defaults.
type Config struct {
	// MaxWatchers bounds the watchers of one stream.
	MaxWatchers int
	// QueueSize bounds the responses queued on one stream.
	QueueSize int
	// ProgressInterval is the period of progress notifications to watchers
	// created with progress_notify.
	ProgressInterval time.Duration
	// CatchUpBatch is how many events a catch-up reads at once.
	CatchUpBatch int
}

func (c Config) withDefaults() Config {
	if c.MaxWatchers <= 0 {
		c.MaxWatchers = DefaultMaxWatchers
	}
	if c.QueueSize <= 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.ProgressInterval <= 0 {
		c.ProgressInterval = DefaultProgressInterval
	}
	if c.CatchUpBatch <= 0 {
		c.CatchUpBatch = DefaultCatchUpBatch
	}
	return c
}

// Response is one message for a stream; the gRPC edge turns it into a
// WatchResponse (header, prev_kv, fragments).
type Response struct {
	WatchID         int64
	Revision        int64 // header revision
	Events          []*mvccpb.Event
	Created         bool
	Canceled        bool
	CancelReason    string
	CompactRevision int64
	// PrevKV and Fragment are the watcher's create options.
	PrevKV   bool
	Fragment bool
}

// Hub is the set of watchers of one member.
type Hub struct {
	hist History
	cfg  Config

	mu      sync.Mutex
	rev     int64
	closed  bool
	synced  map[*watcher]struct{}
	pending map[*Stream]struct{} // streams with a progress request not yet answered
	streams map[*Stream]struct{}
}

// NewHub returns a hub at the history's current revision.
func NewHub(hist History, cfg Config) *Hub {
	return &Hub{
		hist: hist, cfg: cfg.withDefaults(), rev: hist.Rev(),
		synced: map[*watcher]struct{}{}, pending: map[*Stream]struct{}{}, streams: map[*Stream]struct{}{},
	}
}

// Rev is the last revision notified.
func (h *Hub) Rev() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rev
}

// Notify hands the events of revision rev (already committed to History)
// to the synced watchers. It never blocks: a watcher whose stream queue is
// full falls back to catching up from History.
func (h *Hub) Notify(rev int64, evs []*mvccpb.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if rev <= h.rev {
		return
	}
	h.rev = rev
	for w := range h.synced {
		if rev < w.next {
			continue
		}
		matched := w.filter(evs)
		if len(matched) == 0 {
			w.next = rev + 1
			continue
		}
		select {
		case w.s.out <- w.response(rev, matched):
			w.next = rev + 1
			w.sawEvents = true
		default:
			h.demoteLocked(w)
		}
	}
	for s := range h.pending {
		h.progressLocked(s)
	}
}

// Resync moves every synced watcher to catch-up, for when the history
// changed without Notify (a snapshot was restored).
func (h *Hub) Resync() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rev = max(h.rev, h.hist.Rev())
	for w := range h.synced {
		h.demoteLocked(w)
	}
}

// Close ends every stream (their contexts are cancelled with ErrHubClosed)
// and refuses new ones.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	var ss []*Stream
	for s := range h.streams {
		ss = append(ss, s)
	}
	h.mu.Unlock()
	for _, s := range ss {
		s.cancel(ErrHubClosed)
	}
}

// demoteLocked makes a synced watcher catch up from History.
func (h *Hub) demoteLocked(w *watcher) {
	delete(h.synced, w)
	w.synced = false
	w.s.unsynced++
	w.s.wg.Add(1)
	go w.catchUp()
}

// joinLocked adds w to the synced set if it has everything up to h.rev.
func (h *Hub) joinLocked(w *watcher) bool {
	if w.next <= h.rev {
		return false
	}
	h.synced[w] = struct{}{}
	w.synced = true
	return true
}

// progressLocked answers s's pending progress request if every watcher of
// s is synced and its queue has room.
func (h *Hub) progressLocked(s *Stream) {
	if s.unsynced > 0 {
		return
	}
	select {
	case s.out <- Response{WatchID: ProgressWatchID, Revision: h.rev}:
		delete(h.pending, s)
		s.hasPending.Store(false)
	default:
	}
}

// watcher is one watch of a stream.
type watcher struct {
	s                         *Stream
	id                        int64
	key, end                  []byte // end nil: key only; empty: every key >= key
	noPut, noDelete           bool
	prevKV, progress, fragmnt bool

	// Guarded by the hub's mu while synced, owned by the catch-up goroutine
	// while not.
	next      int64
	synced    bool // hub.mu
	closed    bool // hub.mu
	started   bool // hub.mu: in the synced set or catching up (counted in unsynced when not synced)
	sawEvents bool // hub.mu: events sent since the last progress tick

	sendMu sync.Mutex // held across a blocking send of the catch-up goroutine
}

func (w *watcher) match(key []byte) bool {
	if w.end == nil {
		return bytes.Equal(key, w.key)
	}
	if bytes.Compare(key, w.key) < 0 {
		return false
	}
	return len(w.end) == 0 || bytes.Compare(key, w.end) < 0
}

// filter returns the events of evs w wants, sharing evs if it wants all.
func (w *watcher) filter(evs []*mvccpb.Event) []*mvccpb.Event {
	n := 0
	for _, ev := range evs {
		if w.wants(ev) {
			n++
		}
	}
	if n == len(evs) {
		return evs
	}
	out := make([]*mvccpb.Event, 0, n)
	for _, ev := range evs {
		if w.wants(ev) {
			out = append(out, ev)
		}
	}
	return out
}

func (w *watcher) wants(ev *mvccpb.Event) bool {
	if ev.Type == mvccpb.Event_PUT && w.noPut || ev.Type == mvccpb.Event_DELETE && w.noDelete {
		return false
	}
	return w.match(ev.Kv.Key)
}

func (w *watcher) response(rev int64, evs []*mvccpb.Event) Response {
	return Response{WatchID: w.id, Revision: rev, Events: evs, PrevKV: w.prevKV, Fragment: w.fragmnt}
}

// catchUp reads History from w.next until w can rejoin the synced set.
func (w *watcher) catchUp() {
	s, h := w.s, w.s.hub
	defer s.wg.Done()
	for {
		if s.ctx.Err() != nil {
			return
		}
		r0 := h.hist.Rev()
		evs, err := h.hist.Events(w.next, h.cfg.CatchUpBatch)
		if err != nil {
			if errors.Is(err, mvcc.ErrCompacted) {
				w.terminate(Response{WatchID: w.id, Canceled: true, CompactRevision: h.hist.CompactRev()})
			} else {
				w.terminate(Response{WatchID: w.id, Revision: r0, Canceled: true, CancelReason: err.Error()})
			}
			return
		}
		upTo := w.next - 1
		if len(evs) > 0 {
			upTo = max(upTo, evs[len(evs)-1].Kv.ModRevision)
		}
		if len(evs) < h.cfg.CatchUpBatch {
			upTo = max(upTo, r0) // everything up to r0 was read
		}
		if matched := w.filter(evs); len(matched) > 0 {
			if !w.send(w.response(upTo, matched)) {
				return
			}
			h.mu.Lock()
			w.sawEvents = true
			h.mu.Unlock()
		}
		w.next = upTo + 1
		h.mu.Lock()
		if w.closed {
			h.mu.Unlock()
			return
		}
		if h.joinLocked(w) {
			s.unsynced--
			if s.hasPending.Load() {
				h.progressLocked(s)
			}
			h.mu.Unlock()
			return
		}
		h.mu.Unlock()
	}
}

// send queues r for w unless w is closed; it blocks while the queue is full.
func (w *watcher) send(r Response) bool {
	w.sendMu.Lock()
	defer w.sendMu.Unlock()
	w.s.hub.mu.Lock()
	closed := w.closed
	w.s.hub.mu.Unlock()
	if closed {
		return false
	}
	return w.s.enqueue(r)
}

// terminate ends an unsynced watcher from its catch-up goroutine with r.
func (w *watcher) terminate(r Response) {
	s, h := w.s, w.s.hub
	h.mu.Lock()
	if w.closed {
		h.mu.Unlock()
		return
	}
	w.closed = true
	s.unsynced--
	if s.hasPending.Load() {
		h.progressLocked(s)
	}
	h.mu.Unlock()
	s.mu.Lock()
	if s.watchers[w.id] == w {
		delete(s.watchers, w.id)
	}
	s.mu.Unlock()
	s.enqueue(r)
}

// Stream is the watchers of one gRPC stream and their ordered send queue.
type Stream struct {
	hub    *Hub
	ctx    context.Context
	cancel context.CancelCauseFunc
	out    chan Response
	send   func(Response) error

	mu       sync.Mutex
	closed   bool
	watchers map[int64]*watcher
	nextID   int64

	unsynced   int // hub.mu: watchers catching up
	hasPending atomic.Bool

	wg sync.WaitGroup
}

// NewStream starts a stream whose responses are passed, in order, to send
// from one goroutine. The stream ends when ctx is done, send fails or the
// hub closes; Close then waits for its goroutines.
func (h *Hub) NewStream(ctx context.Context, send func(Response) error) *Stream {
	ctx, cancel := context.WithCancelCause(ctx)
	s := &Stream{hub: h, ctx: ctx, cancel: cancel, out: make(chan Response, h.cfg.QueueSize), send: send,
		watchers: map[int64]*watcher{}}
	h.mu.Lock()
	if h.closed {
		cancel(ErrHubClosed)
	} else {
		h.streams[s] = struct{}{}
	}
	h.mu.Unlock()
	s.wg.Add(2)
	go s.sendLoop()
	go s.progressLoop()
	return s
}

// Context is the stream's context; its cause tells why the stream ended.
func (s *Stream) Context() context.Context { return s.ctx }

func (s *Stream) sendLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case r := <-s.out:
			if err := s.send(r); err != nil {
				s.cancel(err)
				return
			}
			if s.hasPending.Load() {
				s.hub.mu.Lock()
				if _, ok := s.hub.pending[s]; ok {
					s.hub.progressLocked(s)
				}
				s.hub.mu.Unlock()
			}
		}
	}
}

func (s *Stream) progressLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.hub.cfg.ProgressInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.progressTick()
		}
	}
}

// progressTick sends a progress notification to every synced
// progress_notify watcher that got no events since the last tick.
func (s *Stream) progressTick() {
	s.mu.Lock()
	var ws []*watcher
	for _, w := range s.watchers {
		if w.progress {
			ws = append(ws, w)
		}
	}
	s.mu.Unlock()
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, w := range ws {
		if w.closed || !w.synced {
			continue
		}
		if w.sawEvents {
			w.sawEvents = false
			continue
		}
		select {
		case s.out <- Response{WatchID: w.id, Revision: h.rev}:
		default:
		}
	}
}

// enqueue queues r, blocking while the queue is full; false if the stream ended.
func (s *Stream) enqueue(r Response) bool {
	select {
	case s.out <- r:
		return true
	case <-s.ctx.Done():
		return false
	}
}

// Create handles a WatchCreateRequest: it queues the Created response
// (Canceled with the reason if the request is refused), then starts the
// watcher.
func (s *Stream) Create(req *pb.WatchCreateRequest) {
	h := s.hub
	w, err := s.add(req)
	if err != nil {
		s.enqueue(Response{WatchID: -1, Revision: h.Rev(), Created: true, Canceled: true, CancelReason: err.Error()})
		return
	}
	h.mu.Lock()
	hubRev := h.rev
	h.mu.Unlock()
	w.next = req.GetStartRevision()
	if w.next <= 0 {
		w.next = hubRev + 1
	}
	if !s.enqueue(Response{WatchID: w.id, Revision: hubRev, Created: true}) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if w.closed || s.ctx.Err() != nil {
		return
	}
	w.started = true
	if !h.joinLocked(w) {
		s.unsynced++
		s.wg.Add(1)
		go w.catchUp()
	}
}

// Refuse queues the answer to a create request refused before it reached
// the stream (a permission check): Created and Canceled, watch ID -1, with
// reason.
func (s *Stream) Refuse(reason string) {
	s.enqueue(Response{WatchID: -1, Revision: s.hub.Rev(), Created: true, Canceled: true, CancelReason: reason})
}

// add validates req and registers its watcher on the stream.
func (s *Stream) add(req *pb.WatchCreateRequest) (*watcher, error) {
	key, end := req.GetKey(), req.GetRangeEnd()
	if len(key) == 0 {
		key = []byte{0}
	}
	switch {
	case len(end) == 0:
		end = nil
	case len(end) == 1 && end[0] == 0:
		end = []byte{}
	case bytes.Compare(key, end) >= 0:
		return nil, ErrEmptyRange
	}
	w := &watcher{s: s, key: bytes.Clone(key), end: end, prevKV: req.GetPrevKv(),
		progress: req.GetProgressNotify(), fragmnt: req.GetFragment()}
	if end != nil {
		w.end = bytes.Clone(end)
		if w.end == nil {
			w.end = []byte{}
		}
	}
	for _, f := range req.GetFilters() {
		switch f {
		case pb.WatchCreateRequest_NOPUT:
			w.noPut = true
		case pb.WatchCreateRequest_NODELETE:
			w.noDelete = true
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errStreamClosed
	}
	if len(s.watchers) >= s.hub.cfg.MaxWatchers {
		return nil, fmt.Errorf("%w (max %d)", ErrTooManyWatch, s.hub.cfg.MaxWatchers)
	}
	if id := req.GetWatchId(); id != 0 {
		if _, ok := s.watchers[id]; ok {
			return nil, ErrDuplicateID
		}
		w.id = id
	} else {
		for s.watchers[s.nextID] != nil {
			s.nextID++
		}
		w.id = s.nextID
		s.nextID++
	}
	s.watchers[w.id] = w
	return w, nil
}

// Cancel handles a WatchCancelRequest: an existing watcher is removed and a
// Canceled response queued after everything already queued for it.
func (s *Stream) Cancel(id int64) {
	s.mu.Lock()
	w := s.watchers[id]
	delete(s.watchers, id)
	s.mu.Unlock()
	if w == nil || !s.remove(w) {
		return
	}
	w.sendMu.Lock() // wait for a catch-up send in flight
	w.sendMu.Unlock()
	s.enqueue(Response{WatchID: id, Revision: s.hub.Rev(), Canceled: true})
}

// remove detaches w from the hub; false if it already was.
func (s *Stream) remove(w *watcher) bool {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if w.closed {
		return false
	}
	w.closed = true
	if w.synced {
		delete(h.synced, w)
	} else if w.started {
		s.unsynced--
		if s.hasPending.Load() {
			h.progressLocked(s)
		}
	}
	return true
}

// RequestProgress handles a WatchProgressRequest: once every watcher of the
// stream is synced, a response with watch ID -1 and the hub's revision is
// queued; no event queued after it has a revision at or below it.
func (s *Stream) RequestProgress() {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pending[s] = struct{}{}
	s.hasPending.Store(true)
	h.progressLocked(s)
}

// Abort ends the stream with cause err (see Context).
func (s *Stream) Abort(err error) { s.cancel(err) }

// Close ends the stream and waits for its goroutines.
func (s *Stream) Close() {
	s.cancel(errStreamClosed)
	s.mu.Lock()
	s.closed = true
	ws := make([]*watcher, 0, len(s.watchers))
	for _, w := range s.watchers {
		ws = append(ws, w)
	}
	s.mu.Unlock()
	for _, w := range ws {
		s.remove(w)
	}
	h := s.hub
	h.mu.Lock()
	delete(h.pending, s)
	delete(h.streams, s)
	h.mu.Unlock()
	s.wg.Wait()
}
