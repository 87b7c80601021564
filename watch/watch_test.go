package watch

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/synod-db/synod/mvcc"
)

// fakeHistory is an in-memory revision log. write commits a revision to it
// (History sees it at once); the test then calls Notify, like the apply path.
type fakeHistory struct {
	mu      sync.Mutex
	revs    [][]*mvccpb.Event // revs[i] are the events of revision i+2
	compact int64
}

func (f *fakeHistory) Rev() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return int64(len(f.revs)) + 1
}

func (f *fakeHistory) CompactRev() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.compact
}

func (f *fakeHistory) Events(from int64, limit int) ([]*mvccpb.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if from < f.compact {
		return nil, fmt.Errorf("fake: %w", mvcc.ErrCompacted)
	}
	var out []*mvccpb.Event
	for rev := max(from, 2); rev <= int64(len(f.revs))+1; rev++ {
		if limit > 0 && len(out) >= limit {
			break
		}
		out = append(out, f.revs[rev-2]...)
	}
	return out, nil
}

// write commits one revision putting each key; it returns the revision and its events.
func (f *fakeHistory) write(keys ...string) (int64, []*mvccpb.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rev := int64(len(f.revs)) + 2
	var evs []*mvccpb.Event
	for _, k := range keys {
		evs = append(evs, &mvccpb.Event{Type: mvccpb.Event_PUT, Kv: &mvccpb.KeyValue{Key: []byte(k), Value: []byte(fmt.Sprint(rev)), ModRevision: rev}})
	}
	f.revs = append(f.revs, evs)
	return rev, evs
}

func (f *fakeHistory) del(key string) (int64, []*mvccpb.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rev := int64(len(f.revs)) + 2
	evs := []*mvccpb.Event{{Type: mvccpb.Event_DELETE, Kv: &mvccpb.KeyValue{Key: []byte(key), ModRevision: rev}}}
	f.revs = append(f.revs, evs)
	return rev, evs
}

// collector records the responses of a stream; its send can be blocked.
type collector struct {
	mu    sync.Mutex
	cond  *sync.Cond
	resps []Response
	gate  chan struct{} // when non-nil, send waits on it
}

func newCollector() *collector {
	c := &collector{}
	c.cond = sync.NewCond(&c.mu)
	return c
}

func (c *collector) send(r Response) error {
	c.mu.Lock()
	gate := c.gate
	c.mu.Unlock()
	if gate != nil {
		<-gate
	}
	c.mu.Lock()
	c.resps = append(c.resps, r)
	c.cond.Broadcast()
	c.mu.Unlock()
	return nil
}

// wait waits until cond holds on the responses so far, or fails after 10s.
func (c *collector) wait(t *testing.T, what string, cond func([]Response) bool) []Response {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	timer := time.AfterFunc(10*time.Second, func() { c.mu.Lock(); c.cond.Broadcast(); c.mu.Unlock() })
	defer timer.Stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for !cond(c.resps) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; got %+v", what, c.resps)
		}
		c.cond.Wait()
	}
	return append([]Response(nil), c.resps...)
}

// eventsOf returns the events sent to watch id, failing on a revision split
// across responses.
func eventsOf(t *testing.T, resps []Response, id int64) []*mvccpb.Event {
	t.Helper()
	var out []*mvccpb.Event
	for _, r := range resps {
		if r.WatchID != id || len(r.Events) == 0 {
			continue
		}
		if len(out) > 0 && out[len(out)-1].Kv.ModRevision == r.Events[0].Kv.ModRevision {
			t.Fatalf("revision %d split across responses", r.Events[0].Kv.ModRevision)
		}
		out = append(out, r.Events...)
	}
	return out
}

func revsUpTo(resps []Response, id, rev int64) func([]Response) bool {
	return func(rs []Response) bool {
		for _, r := range rs {
			if r.WatchID == id && len(r.Events) > 0 && r.Events[len(r.Events)-1].Kv.ModRevision >= rev {
				return true
			}
		}
		return false
	}
}

// checkSequence checks that evs are exactly the revisions from..to, in
// order, each with nkeys events.
func checkSequence(t *testing.T, evs []*mvccpb.Event, from, to int64, nkeys int) {
	t.Helper()
	want := from
	for i := 0; i < len(evs); i += nkeys {
		for j := 0; j < nkeys; j++ {
			if i+j >= len(evs) || evs[i+j].Kv.ModRevision != want {
				t.Fatalf("event %d: want revision %d (%d keys each), got %v", i+j, want, nkeys, revsOf(evs))
			}
		}
		want++
	}
	if want != to+1 {
		t.Fatalf("events end at %d, want %d: %v", want-1, to, revsOf(evs))
	}
}

func revsOf(evs []*mvccpb.Event) []int64 {
	var out []int64
	for _, e := range evs {
		out = append(out, e.Kv.ModRevision)
	}
	return out
}

func newTestStream(t *testing.T, h *Hub) (*Stream, *collector) {
	c := newCollector()
	s := h.NewStream(context.Background(), c.send)
	t.Cleanup(func() {
		c.mu.Lock()
		if c.gate != nil {
			close(c.gate)
			c.gate = nil
		}
		c.mu.Unlock()
		s.Close()
	})
	return s, c
}

func created(id int64) func([]Response) bool {
	return func(rs []Response) bool {
		for _, r := range rs {
			if r.Created && r.WatchID == id {
				return true
			}
		}
		return false
	}
}

// Writers interleave with watchers created from the past, the present and
// the future; every watcher sees each revision once, whole, in order.
func TestOrderedAtomicNoGaps(t *testing.T) {
	f := &fakeHistory{}
	h := NewHub(f, Config{QueueSize: 4, CatchUpBatch: 3})
	for i := 0; i < 20; i++ {
		h.Notify(f.write("a", "b"))
	}
	s, c := newTestStream(t, h)
	s.Create(&pb.WatchCreateRequest{Key: []byte("a"), RangeEnd: []byte("c"), StartRevision: 2}) // id 0
	s.Create(&pb.WatchCreateRequest{Key: []byte("a"), RangeEnd: []byte("c")})                   // id 1: from now
	var mu sync.Mutex
	var wg sync.WaitGroup
	last := int64(0)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				mu.Lock() // writes commit and notify in revision order, like the raft loop
				rev, evs := f.write("a", "b")
				h.Notify(rev, evs)
				last = rev
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	rs := c.wait(t, "all events", func(rs []Response) bool {
		return revsUpTo(nil, 0, last)(rs) && revsUpTo(nil, 1, last)(rs)
	})
	checkSequence(t, eventsOf(t, rs, 0), 2, last, 2)
	var created1 int64
	for _, r := range rs {
		if r.Created && r.WatchID == 1 {
			created1 = r.Revision
		}
	}
	checkSequence(t, eventsOf(t, rs, 1), created1+1, last, 2)
}

// A stuck consumer never blocks Notify; its watcher lags, then catches up
// from history without duplicates or gaps once the consumer resumes.
func TestNotifyNeverBlocksAndLaggingCatchesUp(t *testing.T) {
	f := &fakeHistory{}
	h := NewHub(f, Config{QueueSize: 2, CatchUpBatch: 5})
	s, c := newTestStream(t, h)
	s.Create(&pb.WatchCreateRequest{Key: []byte("k")})
	c.wait(t, "created", created(0))
	gate := make(chan struct{})
	c.mu.Lock()
	c.gate = gate
	c.mu.Unlock()
	done := make(chan struct{})
	var last int64
	go func() {
		defer close(done)
		for i := 0; i < 200; i++ {
			rev, evs := f.write("k")
			h.Notify(rev, evs)
			last = rev
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Notify blocked behind a stuck consumer")
	}
	c.mu.Lock()
	c.gate = nil
	c.mu.Unlock()
	close(gate)
	rs := c.wait(t, "catch-up", revsUpTo(nil, 0, last))
	checkSequence(t, eventsOf(t, rs, 0), 2, last, 1)
	// Synced again: a new revision arrives through Notify.
	rev, evs := f.write("k")
	h.Notify(rev, evs)
	rs = c.wait(t, "synced event", revsUpTo(nil, 0, rev))
	checkSequence(t, eventsOf(t, rs, 0), 2, rev, 1)
}

// A start revision below the compaction revision: Created, then canceled
// with the compaction revision.
func TestCompactedStartCancels(t *testing.T) {
	f := &fakeHistory{}
	h := NewHub(f, Config{})
	for i := 0; i < 5; i++ {
		h.Notify(f.write("k"))
	}
	f.compact = 4
	s, c := newTestStream(t, h)
	s.Create(&pb.WatchCreateRequest{Key: []byte("k"), StartRevision: 3})
	rs := c.wait(t, "cancel", func(rs []Response) bool { return len(rs) >= 2 })
	if !rs[0].Created || rs[0].Canceled || rs[1].WatchID != 0 || !rs[1].Canceled || rs[1].CompactRevision != 4 {
		t.Fatalf("responses %+v", rs)
	}
	// At the compaction revision itself history is complete.
	s.Create(&pb.WatchCreateRequest{Key: []byte("k"), StartRevision: 4})
	rs = c.wait(t, "events", revsUpTo(nil, 1, 6))
	checkSequence(t, eventsOf(t, rs, 1), 4, 6, 1)
}

// A lagging watcher whose history is compacted meanwhile is canceled with
// the compaction revision so the client can resume.
func TestLaggingCompactedCancels(t *testing.T) {
	f := &fakeHistory{}
	h := NewHub(f, Config{QueueSize: 1})
	s, c := newTestStream(t, h)
	s.Create(&pb.WatchCreateRequest{Key: []byte("k")})
	c.wait(t, "created", created(0))
	gate := make(chan struct{})
	c.mu.Lock()
	c.gate = gate
	c.mu.Unlock()
	for i := 0; i < 10; i++ {
		h.Notify(f.write("k"))
	}
	f.mu.Lock()
	f.compact = 11
	f.mu.Unlock()
	c.mu.Lock()
	c.gate = nil
	c.mu.Unlock()
	close(gate)
	rs := c.wait(t, "compacted cancel", func(rs []Response) bool {
		return len(rs) > 0 && rs[len(rs)-1].Canceled
	})
	if r := rs[len(rs)-1]; r.CompactRevision != 11 {
		t.Fatalf("cancel %+v", r)
	}
	evs := eventsOf(t, rs, 0)
	for i, e := range evs { // what did arrive is a gapless prefix
		if e.Kv.ModRevision != int64(i)+2 {
			t.Fatalf("events %v", revsOf(evs))
		}
	}
}

func TestCreateOptions(t *testing.T) {
	f := &fakeHistory{}
	h := NewHub(f, Config{MaxWatchers: 3})
	s, c := newTestStream(t, h)
	s.Create(&pb.WatchCreateRequest{Key: []byte("b"), RangeEnd: []byte("a")}) // empty range
	s.Create(&pb.WatchCreateRequest{Key: []byte("a"), RangeEnd: []byte{0}, WatchId: 7, Filters: []pb.WatchCreateRequest_FilterType{pb.WatchCreateRequest_NOPUT}})
	s.Create(&pb.WatchCreateRequest{Key: []byte("a"), WatchId: 7})                                                                  // duplicate
	s.Create(&pb.WatchCreateRequest{Key: []byte("x"), Filters: []pb.WatchCreateRequest_FilterType{pb.WatchCreateRequest_NODELETE}}) // id 0
	s.Create(&pb.WatchCreateRequest{})                                                                                              // id 1: key "\x00"
	s.Create(&pb.WatchCreateRequest{Key: []byte("z")})                                                                              // too many
	rs := c.wait(t, "creates", func(rs []Response) bool { return len(rs) >= 6 })
	want := []struct {
		id       int64
		canceled bool
		reason   string
	}{{-1, true, ErrEmptyRange.Error()}, {7, false, ""}, {-1, true, ErrDuplicateID.Error()}, {0, false, ""}, {1, false, ""}, {-1, true, "synod: too many watchers on one stream (max 3)"}}
	for i, w := range want {
		if r := rs[i]; !r.Created || r.WatchID != w.id || r.Canceled != w.canceled || r.CancelReason != w.reason {
			t.Errorf("create %d: %+v, want %+v", i, r, w)
		}
	}
	h.Notify(f.write("x", "b"))
	h.Notify(f.del("x"))
	h.Notify(f.del("b"))
	rs = c.wait(t, "events", revsUpTo(nil, 7, 4))
	if e := eventsOf(t, rs, 7); len(e) != 2 || string(e[0].Kv.Key) != "x" || string(e[1].Kv.Key) != "b" || e[1].Type != mvccpb.Event_DELETE {
		t.Errorf("watch 7 (>= a, NOPUT): %v", e)
	}
	if e := eventsOf(t, rs, 0); len(e) != 1 || string(e[0].Kv.Key) != "x" || e[0].Type != mvccpb.Event_PUT {
		t.Errorf("watch 0 (x, NODELETE): %v", e)
	}
	if e := eventsOf(t, rs, 1); len(e) != 0 {
		t.Errorf("watch 1 (\\x00): %v", e)
	}
	// Cancel: a Canceled response, then nothing more for it.
	s.Cancel(0)
	h.Notify(f.write("x"))
	s.Cancel(7)
	rs = c.wait(t, "cancels", func(rs []Response) bool { return len(rs) >= 2 && rs[len(rs)-1].Canceled && rs[len(rs)-1].WatchID == 7 })
	if e := eventsOf(t, rs, 0); len(e) != 1 {
		t.Errorf("watch 0 after cancel: %v", revsOf(e))
	}
}

// Progress: stream-level (watch ID -1) once all watchers are synced, and
// periodic for progress_notify watchers; never behind an event sent.
func TestProgress(t *testing.T) {
	f := &fakeHistory{}
	h := NewHub(f, Config{ProgressInterval: time.Millisecond, CatchUpBatch: 2})
	for i := 0; i < 10; i++ {
		h.Notify(f.write("k"))
	}
	s, c := newTestStream(t, h)
	s.Create(&pb.WatchCreateRequest{Key: []byte("k"), StartRevision: 2, ProgressNotify: true})
	s.RequestProgress()
	rs := c.wait(t, "stream progress", func(rs []Response) bool {
		for _, r := range rs {
			if r.WatchID == ProgressWatchID {
				return true
			}
		}
		return false
	})
	maxEv := int64(0)
	for _, r := range rs {
		if r.WatchID == ProgressWatchID {
			if r.Revision != 11 || maxEv != 11 {
				t.Fatalf("progress at %d after events up to %d, want 11 after all", r.Revision, maxEv)
			}
			break
		}
		for _, e := range r.Events {
			maxEv = e.Kv.ModRevision
		}
	}
	rs = c.wait(t, "periodic progress", func(rs []Response) bool {
		for _, r := range rs {
			if r.WatchID == 0 && !r.Created && len(r.Events) == 0 {
				return true
			}
		}
		return false
	})
	// Bookmarks never go backwards and no later event is at or below one.
	mark := int64(0)
	for _, r := range rs {
		if len(r.Events) == 0 && !r.Created && !r.Canceled {
			if r.Revision < mark {
				t.Fatalf("progress went back to %d from %d", r.Revision, mark)
			}
			mark = r.Revision
		}
		for _, e := range r.Events {
			if e.Kv.ModRevision <= mark {
				t.Fatalf("event %d after progress %d", e.Kv.ModRevision, mark)
			}
		}
	}
}

// Resync after a restore: synced watchers catch up on what the restore
// brought without Notify.
func TestResync(t *testing.T) {
	f := &fakeHistory{}
	h := NewHub(f, Config{})
	s, c := newTestStream(t, h)
	s.Create(&pb.WatchCreateRequest{Key: []byte("k")})
	c.wait(t, "created", created(0))
	for i := 0; i < 3; i++ {
		f.write("k") // no Notify: arrived by snapshot
	}
	h.Resync()
	rs := c.wait(t, "resync", revsUpTo(nil, 0, 4))
	checkSequence(t, eventsOf(t, rs, 0), 2, 4, 1)
}

func TestHubClose(t *testing.T) {
	h := NewHub(&fakeHistory{}, Config{})
	s, _ := newTestStream(t, h)
	h.Close()
	<-s.Context().Done()
	if context.Cause(s.Context()) != ErrHubClosed {
		t.Fatalf("cause %v", context.Cause(s.Context()))
	}
}
