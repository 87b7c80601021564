package mvcc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"
)

// compactHistory builds a history exercising every compaction case and
// returns the revision to compact at (9):
//
//	a: put 2, put 3, put 5, put 12      (several versions <= 9, one after)
//	b: put 4, del 6                     (tombstone is the newest <= 9)
//	c: put 7, del 9                     (tombstone exactly at 9)
//	d: put 8, del 10, put 11            (newest <= 9 live, then deleted and re-put)
//	e: put 13                           (only after 9)
//	a\x00: put 14                        (a key extending a's bytes)
func compactHistory(h *harness) int64 {
	h.put("a", "1")     // 2
	h.put("a", "2")     // 3
	h.put("b", "1")     // 4
	h.put("a", "3")     // 5
	h.del("b", "")      // 6
	h.put("c", "1")     // 7
	h.put("d", "1")     // 8
	h.del("c", "")      // 9
	h.del("d", "")      // 10
	h.put("d", "2")     // 11
	h.put("a", "4")     // 12
	h.put("e", "1")     // 13
	h.put("a\x00", "z") // 14: a key sharing a's bytes
	return 9
}

// snapshotReads records every range of the whole keyspace at revisions
// from..Rev() plus the hashes, to compare after compaction.
type readRecord struct {
	ranges map[int64][]byte
	hashes map[int64]uint32
}

func recordReads(h *harness, from int64) readRecord {
	h.t.Helper()
	rec := readRecord{ranges: map[int64][]byte{}, hashes: map[int64]uint32{}}
	for rev := from; rev <= h.s.Rev(); rev++ {
		resp := h.rng(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, Revision: rev})
		b, err := proto.Marshal(resp)
		if err != nil {
			h.t.Fatal(err)
		}
		rec.ranges[rev] = b
		rec.hashes[rev] = h.hash(rev)
	}
	rec.hashes[0] = h.hash(0)
	return rec
}

func (rec readRecord) check(h *harness, what string) {
	h.t.Helper()
	got := recordReads(h, minKey(rec.ranges))
	for rev, b := range rec.ranges {
		if string(got.ranges[rev]) != string(b) {
			h.t.Fatalf("%s: range at rev %d changed", what, rev)
		}
	}
	for rev, v := range rec.hashes {
		if got.hashes[rev] != v {
			h.t.Fatalf("%s: HashKV(%d) %08x, was %08x", what, rev, got.hashes[rev], v)
		}
	}
}

func minKey(m map[int64][]byte) int64 {
	lo := int64(-1)
	for k := range m {
		if lo < 0 || k < lo {
			lo = k
		}
	}
	return lo
}

func rawLogEntries(t *testing.T, db *pebble.DB, below int64) int {
	t.Helper()
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: logStart, UpperBound: logKey(below, 0)})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for v := it.First(); v; v = it.Next() {
		n++
	}
	return n
}

func TestCompaction(t *testing.T) {
	paused := make(chan int, 100)
	release := make(chan struct{})
	var once sync.Once
	h := newHarness(t, Options{CompactionBatch: 2, hooks: &testHooks{beforeCompactCommit: func(batch int) error {
		paused <- batch
		<-release
		return nil
	}}})
	t.Cleanup(func() { once.Do(func() { close(release) }) }) // runs before the harness cleanup
	c := compactHistory(h)
	rec := recordReads(h, c)
	res := h.compact(c)
	if res.Err != nil || res.Resp.(*pb.CompactionResponse).Header.Revision != 14 {
		t.Fatalf("compaction: %v %v", res.Resp, res.Err)
	}
	if h.s.CompactRev() != c {
		t.Fatalf("CompactRev %d, want %d", h.s.CompactRev(), c)
	}
	select {
	case <-res.Compacted:
		t.Fatal("Compacted closed before the physical deletion ran")
	default:
	}
	if b := <-paused; b != 0 {
		t.Fatalf("first batch %d", b)
	}
	// Logical compaction done, physical not (the worker is held before its
	// first commit): reads at >= c are unchanged. HashKV legitimately changes
	// with the compaction revision; it must not change with physical progress.
	rec2 := recordReads(h, c)
	for rev := range rec.ranges {
		if string(rec.ranges[rev]) != string(rec2.ranges[rev]) {
			t.Fatalf("range at %d changed by logical compaction", rev)
		}
	}
	_, err := h.s.Range(t.Context(), &pb.RangeRequest{Key: []byte("a"), Revision: c - 1})
	wantErr(t, err, ErrCompacted)
	once.Do(func() { close(release) })
	waitClosed(t, res.Compacted, "physical compaction")
	rec2.check(h, "after physical compaction")
	if err := h.s.CompactionErr(); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]int{"a": 2, "b": 0, "c": 0, "d": 3, "e": 1, "a\x00": 1} {
		if got := countVersions(t, h.db, key); got != want {
			t.Errorf("key %q: %d stored versions after compaction, want %d", key, got, want)
		}
	}
	if n := rawLogEntries(t, h.db, c); n != 0 {
		t.Errorf("%d revision log entries below %d left", n, c)
	}
	if n := rawLogEntries(t, h.db, c+1); n != 1 {
		t.Errorf("revision log entry at %d: %d, want 1", c, n)
	}
	// Re-compacting at or below, or in the future.
	res = h.compact(c)
	wantErr(t, res.Err, ErrCompacted)
	waitClosed(t, res.Compacted, "barrier on ErrCompacted")
	wantErr(t, h.compact(15).Err, ErrFutureRev)
	_, _, _, err = h.s.HashKV(c - 1)
	wantErr(t, err, ErrCompacted)
	_, _, _, err = h.s.HashKV(15)
	wantErr(t, err, ErrFutureRev)
}

// TestHashKVIndependentOfPhysicalProgress: the same history compacted on two
// stores, one physically, one not (worker held), hashes the same.
func TestHashKVIndependentOfPhysicalProgress(t *testing.T) {
	held := make(chan struct{})
	stalled := newHarness(t, Options{hooks: &testHooks{beforeCompactCommit: func(int) error { <-held; return nil }}})
	t.Cleanup(func() { close(held) }) // before the harness cleanup closes the store
	done := newHarness(t, Options{CompactionBatch: 1})
	for _, h := range []*harness{stalled, done} {
		c := compactHistory(h)
		h.compact(c)
	}
	waitClosed(t, done.s.waitPhysical(9), "physical compaction")
	if countVersions(t, stalled.db, "a") != 4 || countVersions(t, done.db, "a") != 2 {
		t.Fatal("fixture: expected one store compacted and the other not")
	}
	for _, rev := range []int64{0, 9, 10, 12, 14} {
		if a, b := stalled.hash(rev), done.hash(rev); a != b {
			t.Fatalf("HashKV(%d): %08x uncompacted vs %08x compacted", rev, a, b)
		}
	}
	// And it does move with the compaction revision: a different set.
	fresh := newHarness(t, Options{})
	compactHistory(fresh)
	if fresh.hash(0) == done.hash(0) {
		t.Fatal("HashKV ignores the compaction revision")
	}
}

// TestCompactionSupersede: a second compaction while the first is running.
func TestCompactionSupersede(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	h := newHarness(t, Options{CompactionBatch: 1, hooks: &testHooks{beforeCompactCommit: func(int) error { <-release; return nil }}})
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	compactHistory(h)
	r1 := h.compact(5)
	r2 := h.compact(11)
	rec := recordReads(h, 11)
	once.Do(func() { close(release) })
	waitClosed(t, r1.Compacted, "first compaction")
	waitClosed(t, r2.Compacted, "second compaction")
	rec.check(h, "after two compactions")
	for key, want := range map[string]int{"a": 2, "b": 0, "c": 0, "d": 1, "e": 1} {
		if got := countVersions(t, h.db, key); got != want {
			t.Errorf("key %q: %d versions, want %d", key, got, want)
		}
	}
}

var errInjected = errors.New("injected failure")

// TestCompactionResume: a pass interrupted after its first batch resumes
// from its persisted progress on Open and reaches the same state.
func TestCompactionResume(t *testing.T) {
	failed := make(chan struct{})
	var once sync.Once
	h := newHarness(t, Options{CompactionBatch: 1, hooks: &testHooks{beforeCompactCommit: func(batch int) error {
		if batch != 1 {
			return nil
		}
		err := error(nil)
		once.Do(func() { close(failed); err = errInjected })
		return err
	}}})
	c := compactHistory(h)
	res := h.compact(c)
	rec := recordReads(h, c) // the logical compaction defines the hashed set
	waitClosed(t, failed, "injected failure")
	if err := h.s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.s.CompactionErr(); !errors.Is(err, errInjected) {
		t.Fatalf("CompactionErr %v, want injected", err)
	}
	select {
	case <-res.Compacted:
		t.Fatal("Compacted closed although the pass failed")
	default:
	}
	if p, err := readMeta(h.db, metaProgress, 0); err != nil || p == nil {
		t.Fatalf("no compaction progress persisted: %v", err)
	}
	if got := countVersions(t, h.db, "a"); got != 3 {
		t.Fatalf("after one batch of 1: a has %d versions, want 3", got)
	}
	h.opts.hooks = nil
	h.reopen()
	if h.s.CompactRev() != c {
		t.Fatalf("CompactRev after reopen %d", h.s.CompactRev())
	}
	waitClosed(t, h.s.waitPhysical(c), "resumed compaction")
	rec.check(h, "after resumed compaction")
	for key, want := range map[string]int{"a": 2, "b": 0, "c": 0, "d": 3, "e": 1} {
		if got := countVersions(t, h.db, key); got != want {
			t.Errorf("key %q: %d versions, want %d", key, got, want)
		}
	}
	if p, _ := readMeta(h.db, metaProgress, 0); p != nil {
		t.Fatal("progress meta left after the pass finished")
	}
}

// TestCompactionTombstoneLast: with a batch of 1, a key whose newest version
// <= C is a tombstone loses its older versions first and the tombstone last;
// between batches, reads at >= C never see an older version resurface.
func TestCompactionTombstoneLast(t *testing.T) {
	var h *harness
	check := func(batch int) error {
		resp, err := h.s.Range(context.Background(), &pb.RangeRequest{Key: []byte("b")})
		if err != nil || len(resp.Kvs) != 0 {
			t.Errorf("before batch %d: deleted key read as %v, %v", batch, resp, err)
		}
		return nil
	}
	h = newHarness(t, Options{CompactionBatch: 1, hooks: &testHooks{beforeCompactCommit: check}})
	h.put("b", "1")
	h.put("b", "2")
	h.put("b", "3")
	h.del("b", "")
	h.put("z", "1")
	res := h.compact(h.s.Rev())
	waitClosed(t, res.Compacted, "compaction")
	if err := h.s.CompactionErr(); err != nil {
		t.Fatal(err)
	}
	if n := countVersions(t, h.db, "b"); n != 0 {
		t.Fatalf("b has %d versions left", n)
	}
}

// TestCompactionVisitsOnlyChanges: when few keys changed since the last
// finished pass, a pass visits those keys (from the revision log), not the
// whole keyspace (two changes: three batches of 1 deletion; a scan of the
// 200 keys takes dozens), and still deletes what they supersede: versions
// kept by the last pass, tombstoned keys; keys not changed since keep their
// one version. The first pass, with no finished one before it, scans.
func TestCompactionVisitsOnlyChanges(t *testing.T) {
	batches := 0
	h := newHarness(t, Options{CompactionBatch: 1, hooks: &testHooks{beforeCompactCommit: func(int) error {
		batches++
		return nil
	}}})
	for i := range 200 {
		h.put(fmt.Sprintf("k%03d", i), "1")
	}
	h.put("a", "1")
	h.put("b", "1")
	if err := h.db.Flush(); err != nil { // the store's size is estimated from its tables
		t.Fatal(err)
	}
	waitClosed(t, h.compact(h.s.Rev()).Compacted, "first compaction")
	first := batches
	h.put("a", "2")
	h.del("b", "")
	waitClosed(t, h.compact(h.s.Rev()).Compacted, "second compaction")
	if err := h.s.CompactionErr(); err != nil {
		t.Fatal(err)
	}
	if n := batches - first; n > 4 { // a: 1 deletion, b: 2 (budget 1 per batch)
		t.Fatalf("the second pass took %d batches of 1 for 2 changes (the first: %d)", n, first)
	}
	for key, want := range map[string]int{"a": 1, "b": 0, "k000": 1, "k199": 1} {
		if got := countVersions(t, h.db, key); got != want {
			t.Errorf("key %q: %d versions, want %d", key, got, want)
		}
	}
	if got := h.get("a"); got == nil || string(got.Value) != "2" {
		t.Fatalf("a: %v", got)
	}
}

// TestReclaimOnlyWhenWorthIt: the background compactor rewrites the state
// keyspace only once the versions it deleted since the last rewrite are a
// fair share of the state (reclaimShare): one superseded version among
// 1000 keys of 1 KiB is left to Pebble, while overwriting most keys
// rewrites (and TestCompactionReclaimsDiskSpace checks the space comes
// back).
func TestReclaimOnlyWhenWorthIt(t *testing.T) {
	reclaims := make(chan struct{}, 10)
	h := newHarness(t, Options{hooks: &testHooks{reclaimed: func() { reclaims <- struct{}{} }}})
	val := string(make([]byte, 1024))
	for i := range 1000 {
		h.put(fmt.Sprintf("k%03d", i), val)
	}
	if err := h.db.Flush(); err != nil {
		t.Fatal(err)
	}
	h.put("k000", "2")
	waitClosed(t, h.compact(h.s.Rev()).Compacted, "small compaction")
	if n := countVersions(t, h.db, "k000"); n != 1 {
		t.Fatalf("k000 has %d versions, want 1", n)
	}
	for i := range 600 {
		h.put(fmt.Sprintf("k%03d", i), "3")
	}
	h.compact(h.s.Rev())
	waitClosed(t, chanOf(reclaims), "a rewrite after freeing most of the state")
	// Passes run in order, each one's rewrite (if any) before the next
	// pass starts (a pass may serve several compactions, and Compacted
	// closes before its rewrite): after two more, every decision before them
	// is made. Neither frees anything.
	for i := range 2 {
		h.put(fmt.Sprintf("z%d", i), "1")
		waitClosed(t, h.compact(h.s.Rev()).Compacted, "a compaction freeing nothing")
	}
	if n := len(reclaims); n != 0 {
		t.Fatalf("%d more rewrites: one was to free a single version", n)
	}
}

// chanOf returns a channel closed once ch delivers a value.
func chanOf(ch <-chan struct{}) <-chan struct{} {
	done := make(chan struct{})
	go func() { <-ch; close(done) }()
	return done
}

// TestWaitCompactorIdle: the compactor is not idle while a pass runs, and
// WaitCompactorIdle returns once the pass a compaction kicked has finished
// (the simulation waits on it after every step to replay a seed exactly).
func TestWaitCompactorIdle(t *testing.T) {
	var h *harness
	var idleInPass []bool // appended by the compactor, read after the wait
	h = newHarness(t, Options{CompactionBatch: 1, hooks: &testHooks{beforeCompactCommit: func(int) error {
		h.s.cmu.Lock()
		idleInPass = append(idleInPass, h.s.idleLocked())
		h.s.cmu.Unlock()
		return nil
	}}})
	rev := compactHistory(h)
	h.compact(rev)
	h.s.WaitCompactorIdle()
	if got := h.s.physicalRev(); got != rev {
		t.Fatalf("WaitCompactorIdle returned with physical compaction at %d, want %d", got, rev)
	}
	if len(idleInPass) == 0 {
		t.Fatal("the pass committed no batch")
	}
	for i, idle := range idleInPass {
		if idle {
			t.Errorf("the compactor reported idle during batch %d of its pass", i)
		}
	}
	h.s.WaitCompactorIdle() // idle already: returns at once
}
