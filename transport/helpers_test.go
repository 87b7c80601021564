package transport

import (
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// waitTimeout bounds every wait in these tests; nothing sleeps.
const waitTimeout = 15 * time.Second

type snapReport struct {
	id     uint64
	failed bool
}

// recorder is a Handler that records everything and lets tests wait for a
// condition. Process blocks while a gate is set.
type recorder struct {
	mu          sync.Mutex
	msgs        []*raftpb.Message
	unreachable map[uint64]int
	snaps       []snapReport
	changed     chan struct{} // closed and replaced on every change
	gate        chan struct{} // Process waits for it to be closed
	blocked     int           // Process calls waiting at the gate
	onSnapshot  func(m *raftpb.Message, body io.Reader) error
}

func newRecorder() *recorder {
	return &recorder{unreachable: make(map[uint64]int), changed: make(chan struct{})}
}

func (r *recorder) notifyLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *recorder) Process(m *raftpb.Message) {
	r.mu.Lock()
	gate := r.gate
	if gate != nil {
		r.blocked++
		r.notifyLocked()
	}
	r.mu.Unlock()
	if gate != nil {
		<-gate
	}
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.notifyLocked()
	r.mu.Unlock()
}

func (r *recorder) ReportUnreachable(id uint64) {
	r.mu.Lock()
	r.unreachable[id]++
	r.notifyLocked()
	r.mu.Unlock()
}

func (r *recorder) ReportSnapshot(id uint64, failed bool) {
	r.mu.Lock()
	r.snaps = append(r.snaps, snapReport{id, failed})
	r.notifyLocked()
	r.mu.Unlock()
}

func (r *recorder) ReceiveSnapshot(m *raftpb.Message, body io.Reader) error {
	r.mu.Lock()
	fn := r.onSnapshot
	r.mu.Unlock()
	if fn == nil {
		_, err := io.Copy(io.Discard, body)
		return err
	}
	return fn(m, body)
}

// block makes Process wait until the returned function is called.
func (r *recorder) block() (release func()) {
	gate := make(chan struct{})
	r.mu.Lock()
	r.gate = gate
	r.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			r.gate = nil
			r.mu.Unlock()
			close(gate)
		})
	}
}

// waitFor waits until cond (called with r.mu held) holds.
func (r *recorder) waitFor(t *testing.T, what string, cond func(r *recorder) bool) {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ok, ch := cond(r), r.changed
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("timed out waiting for %s (have %d messages, unreachable %v, snapshot reports %v)",
				what, len(r.msgs), r.unreachable, r.snaps)
		}
	}
}

func (r *recorder) waitMsgs(t *testing.T, n int) []*raftpb.Message {
	t.Helper()
	r.waitFor(t, fmt.Sprintf("%d messages", n), func(r *recorder) bool { return len(r.msgs) >= n })
	return r.snapshotMsgs()
}

func (r *recorder) waitUnreachable(t *testing.T, id uint64) {
	t.Helper()
	r.waitFor(t, "ReportUnreachable", func(r *recorder) bool { return r.unreachable[id] > 0 })
}

func (r *recorder) waitSnapReport(t *testing.T) snapReport {
	t.Helper()
	r.waitFor(t, "ReportSnapshot", func(r *recorder) bool { return len(r.snaps) > 0 })
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.snaps[0]
}

func (r *recorder) snapshotMsgs() []*raftpb.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*raftpb.Message(nil), r.msgs...)
}

func (r *recorder) unreachableCount(id uint64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.unreachable[id]
}

// msg builds a MsgApp from -> to with the given index and optional payload.
func msg(from, to, index uint64, payload []byte) *raftpb.Message {
	m := &raftpb.Message{
		Type:  raftpb.MessageType_MsgApp.Enum(),
		From:  proto.Uint64(from),
		To:    proto.Uint64(to),
		Term:  proto.Uint64(1),
		Index: proto.Uint64(index),
	}
	if payload != nil {
		m.Entries = []*raftpb.Entry{{
			Term:  proto.Uint64(1),
			Index: proto.Uint64(index + 1),
			Data:  payload,
		}}
	}
	return m
}

// marker is a message tests send to prove a link delivers again.
const markerIndex = 1 << 62

func isMarker(m *raftpb.Message) bool { return m.GetIndex() >= markerIndex }

// hasMarker reports whether a marker (any index >= markerIndex) arrived.
func hasMarker(r *recorder) bool {
	for _, m := range r.msgs {
		if isMarker(m) {
			return true
		}
	}
	return false
}

// sendUntil re-sends a marker from -> to every 20 ms until rec has one. A
// ticker paces retries; the wait itself is on rec's condition.
func sendUntil(t *testing.T, tr Transport, from, to uint64, rec *recorder) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	i := uint64(0)
	tr.Send([]*raftpb.Message{msg(from, to, markerIndex, nil)})
	for {
		rec.mu.Lock()
		ok, ch := hasMarker(rec), rec.changed
		rec.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-tick.C:
			i++
			tr.Send([]*raftpb.Message{msg(from, to, markerIndex+i, nil)})
		case <-deadline.C:
			t.Fatalf("no message from %x reached %x", from, to)
		}
	}
}

// clearMsgs forgets recorded messages.
func (r *recorder) clearMsgs() {
	r.mu.Lock()
	r.msgs = nil
	r.mu.Unlock()
}

// randomBytes returns n reproducible pseudo-random bytes.
func randomBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{seed}).Read(b)
	return b
}
