package raftnode

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/synod-db/synod/mvcc"
	"github.com/synod-db/synod/storage"
	"github.com/synod-db/synod/transport"
)

// testApplier adapts an mvcc.Store to Applier, without membership
// bookkeeping: a run is one mvcc.Group.
type testApplier struct {
	s     *mvcc.Store
	stall *sync.Mutex // held by a test to stall every apply
	db    *pebble.DB  // s's database, synced by Sync
}

func (a testApplier) Applied() (uint64, uint64) { return a.s.Applied() }

// batchedEntries counts the entries every testApplier applied in runs.
var batchedEntries atomic.Int64

func (a testApplier) Apply(reqs []Request, res []Result) error {
	if a.stall != nil {
		a.stall.Lock()
		a.stall.Unlock() //nolint:staticcheck // waits out a stall
	}
	if len(reqs) > 1 {
		batchedEntries.Add(int64(len(reqs)))
	}
	g, err := a.s.NewGroup()
	if err != nil {
		return err
	}
	defer g.Close()
	for i, r := range reqs {
		if r.Req == nil {
			g.Skip(r.Index, r.Term)
			continue
		}
		mr, err := g.Apply(r.Index, r.Term, r.Req)
		if err != nil {
			return err
		}
		res[i] = Result{Resp: mr.Resp, Err: mr.Err}
	}
	return g.Commit()
}
func (a testApplier) ApplyConfChange(i, t uint64, _ *raftpb.ConfChange) (Result, error) {
	return Result{}, a.s.ApplyOther(i, t, nil)
}
func (a testApplier) ConfChangeRejected(uint64) (bool, error) { return false, nil }
func (a testApplier) NewSnapshot() Snapshot                   { return a.s.NewSnapshot() }
func (a testApplier) ReceiveSnapshot(i, t uint64, body io.Reader) error {
	return a.s.ReceiveSnapshot(i, t, body)
}
func (a testApplier) Restore(i, t uint64) error { return a.s.Restore(i, t) }
func (a testApplier) Sync() error               { return a.db.LogData(nil, pebble.Sync) }

// memMember is one member of an in-process cluster on the in-memory network.
type memMember struct {
	id    uint64
	fs    vfs.FS
	db    *pebble.DB
	store *mvcc.Store
	node  *Node
}

type memCluster struct {
	t       testing.TB
	net     *transport.MemNetwork
	peers   []raft.Peer
	snapDir string
	snapCnt uint64
	members map[uint64]*memMember
	timeout time.Duration // members' RequestTimeout; 0 means 3 s
	stall   sync.Mutex    // held to stall every member's applies
}

func newMemCluster(t testing.TB, n int, snapshotCount uint64) *memCluster {
	c := &memCluster{t: t, net: transport.NewMemNetwork(), snapDir: t.TempDir(), snapCnt: snapshotCount,
		members: map[uint64]*memMember{}}
	for i := 1; i <= n; i++ {
		c.peers = append(c.peers, raft.Peer{ID: uint64(i)})
	}
	for i := 1; i <= n; i++ {
		c.start(uint64(i), vfs.NewMem())
	}
	t.Cleanup(func() {
		for id := range c.members {
			c.stop(id)
		}
	})
	return c
}

func (c *memCluster) start(id uint64, fs vfs.FS) {
	c.t.Helper()
	if err := c.tryStart(id, fs, nil); err != nil {
		c.t.Fatal(err)
	}
}

// tryStart starts member id on fs, its Applier wrapped by wrap if set, and
// returns why it did not start.
func (c *memCluster) tryStart(id uint64, fs vfs.FS, wrap func(Applier) Applier) error {
	db, err := pebble.Open("db", &pebble.Options{FS: fs})
	if err != nil {
		return err
	}
	log, err := storage.Open(db)
	if err != nil {
		return errors.Join(err, db.Close())
	}
	st, err := mvcc.Open(db, mvcc.Options{FS: fs, IngestDir: "db.ingest"})
	if err != nil {
		return errors.Join(err, db.Close())
	}
	var a Applier = testApplier{st, &c.stall, db}
	if wrap != nil {
		a = wrap(a)
	}
	n, err := New(Config{
		ID: id, Peers: c.peers, ElectionTicks: 10, HeartbeatTicks: 1, TickInterval: 2 * time.Millisecond,
		SnapshotCount: c.snapCnt, RequestTimeout: cmp.Or(c.timeout, 3*time.Second),
		Log: log, Applier: a, SnapDir: filepath.Join(c.snapDir, fmt.Sprint(id)),
	})
	if err != nil {
		return errors.Join(err, st.Close(), db.Close())
	}
	n.Start(c.net.Join(id, n))
	c.members[id] = &memMember{id: id, fs: fs, db: db, store: st, node: n}
	return nil
}

func (c *memCluster) stop(id uint64) {
	m := c.members[id]
	if m == nil {
		return
	}
	c.net.Leave(id)
	m.node.Stop()
	m.store.Close()
	m.db.Close()
	delete(c.members, id)
}

// waitLeader waits until every running member agrees on a leader.
func (c *memCluster) waitLeader(exclude ...uint64) uint64 {
	c.t.Helper()
	skip := map[uint64]bool{}
	for _, id := range exclude {
		skip[id] = true
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var lead uint64
		ok := true
		for id, m := range c.members {
			if skip[id] {
				continue
			}
			l := m.node.Leader()
			if l == 0 || (lead != 0 && l != lead) || skip[l] {
				ok = false
				break
			}
			lead = l
		}
		if ok && lead != 0 {
			return lead
		}
		time.Sleep(2 * time.Millisecond)
	}
	c.t.Fatal("no agreed leader")
	return 0
}

func put(key, val string) *etcdserverpb.InternalRaftRequest {
	return &etcdserverpb.InternalRaftRequest{Put: &etcdserverpb.PutRequest{Key: []byte(key), Value: []byte(val)}}
}

func tctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// get reads key on member m after a ReadIndex barrier (a linearizable read).
func (c *memCluster) get(t *testing.T, m *memMember, key string) (string, error) {
	if err := m.node.ReadIndex(tctx(t)); err != nil {
		return "", err
	}
	r, err := m.store.Range(tctx(t), &etcdserverpb.RangeRequest{Key: []byte(key)})
	if err != nil || len(r.Kvs) == 0 {
		return "", err
	}
	return string(r.Kvs[0].Value), nil
}

// Every member accepts writes (followers forward them) and serves
// linearizable reads that see every write acknowledged before them.
func TestProposeAnywhereReadEverywhere(t *testing.T) {
	c := newMemCluster(t, 3, 10000)
	c.waitLeader()
	for i := 0; i < 30; i++ {
		w := c.members[uint64(i%3+1)]
		res, err := w.node.Propose(tctx(t), put("k", fmt.Sprint(i)))
		if err != nil || res.Err != nil {
			t.Fatalf("propose %d via %d: %v %v", i, w.id, err, res.Err)
		}
		if rev := res.Resp.(*etcdserverpb.PutResponse).Header.Revision; rev != int64(i+2) {
			t.Fatalf("put %d at revision %d, want %d", i, rev, i+2)
		}
		for _, r := range c.members {
			if v, err := c.get(t, r, "k"); err != nil || v != fmt.Sprint(i) {
				t.Fatalf("read on %d after put %d: %q %v", r.id, i, v, err)
			}
		}
	}
}

// An isolated leader steps down (check-quorum) and answers promptly; the
// majority elects a new leader and keeps serving; after healing, the old
// leader converges to the same state.
func TestIsolatedLeaderStepsDownAndConverges(t *testing.T) {
	c := newMemCluster(t, 3, 10000)
	old := c.waitLeader()
	var others []uint64
	for id := range c.members {
		if id != old {
			others = append(others, id)
		}
	}
	c.net.Partition([]uint64{old}, others)
	start := time.Now()
	_, err := c.members[old].node.Propose(tctx(t), put("lost", "x"))
	if !errors.Is(err, ErrNoLeader) && !errors.Is(err, ErrLeaderLost) {
		t.Fatalf("propose on isolated leader: %v, want no leader / leader lost", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("isolated leader took %v to answer", d)
	}
	lead := c.waitLeader(old)
	if _, err := c.members[lead].node.Propose(tctx(t), put("k", "majority")); err != nil {
		t.Fatalf("majority write: %v", err)
	}
	if _, err := c.get(t, c.members[old], "k"); !errors.Is(err, ErrNoLeader) {
		t.Fatalf("linearizable read on the isolated member: %v, want no leader", err)
	}
	c.net.Heal()
	c.waitLeader()
	waitFor(t, func() bool {
		v, err := c.get(t, c.members[old], "k")
		return err == nil && v == "majority"
	})
	h := map[uint32]bool{}
	rev := c.members[lead].store.Rev()
	waitFor(t, func() bool {
		for _, m := range c.members {
			if m.store.Rev() != rev {
				return false
			}
		}
		return true
	})
	for _, m := range c.members {
		hash, _, _, err := m.store.HashKV(rev)
		if err != nil {
			t.Fatal(err)
		}
		h[hash] = true
	}
	if len(h) != 1 {
		t.Fatalf("members disagree after healing: %v", h)
	}
}

// A caller that gives up leaves no waiter behind.
func TestAbandonedProposalIsCleanedUp(t *testing.T) {
	c := newMemCluster(t, 3, 10000)
	lead := c.waitLeader()
	var others []uint64
	for id := range c.members {
		if id != lead {
			others = append(others, id)
		}
	}
	// Cut the leader's outbound links only: it stays leader for an
	// election timeout but cannot commit.
	for _, o := range others {
		c.net.Cut(lead, o)
	}
	n := c.members[lead].node
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	_, err := n.Propose(ctx, put("a", "b"))
	if err == nil {
		t.Fatal("proposal without quorum succeeded")
	}
	n.c.wait.mu.Lock()
	left := len(n.c.wait.m)
	n.c.wait.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d waiters left behind after the caller gave up (%v)", left, err)
	}
}

// A member restarted after the log was truncated past it catches up through
// a snapshot streamed over the transport.
func TestRestartedMemberCatchesUpBySnapshot(t *testing.T) {
	c := newMemCluster(t, 3, 10)
	lead := c.waitLeader()
	lag := lead%3 + 1
	fs := c.members[lag].fs
	c.stop(lag)
	for i := 0; i < 100; i++ {
		if _, err := c.members[lead].node.Propose(tctx(t), put(fmt.Sprintf("k%03d", i), "v")); err != nil {
			t.Fatal(err)
		}
	}
	c.start(lag, fs)
	m := c.members[lag]
	waitFor(t, func() bool {
		v, err := c.get(t, m, "k099")
		return err == nil && v == "v" && m.node.Stats().SnapshotsInstalled > 0
	})
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Members restart from a stored commit that lags their applied index (a
// commit index alone is not written: hardStateToSave) and from snapshots
// taken above it, keep every acknowledged write and take new ones.
func TestRestartFromLaggingStoredCommit(t *testing.T) {
	c := newMemCluster(t, 3, 5)
	lead := c.waitLeader()
	const puts = 23
	for i := 0; i < puts; i++ {
		if _, err := c.members[lead].node.Propose(tctx(t), put(fmt.Sprintf("k%02d", i), fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	want := c.members[lead].node.AppliedIndex()
	waitFor(t, func() bool {
		for _, m := range c.members {
			if m.node.AppliedIndex() < want {
				return false
			}
		}
		return true
	})
	fss := map[uint64]vfs.FS{}
	for id, m := range c.members {
		fss[id] = m.fs
		c.stop(id)
	}
	for id, fs := range fss {
		c.start(id, fs)
	}
	lead = c.waitLeader()
	for _, m := range c.members {
		if v, err := c.get(t, m, fmt.Sprintf("k%02d", puts-1)); err != nil || v != fmt.Sprint(puts-1) {
			t.Fatalf("member %d after restart: %q %v", m.id, v, err)
		}
	}
	if _, err := c.members[lead].node.Propose(tctx(t), put("after", "restart")); err != nil {
		t.Fatal(err)
	}
}

// Concurrent proposals are committed and applied in runs (ApplyBatch):
// every proposer gets the response of its own entry, revisions are
// distinct and gapless, and every member ends with the same contents.
func TestConcurrentProposalsAppliedInRuns(t *testing.T) {
	c := newMemCluster(t, 3, 10000)
	c.waitLeader()
	before := batchedEntries.Load()
	const n = 200
	revs := make([]int64, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := c.members[uint64(i%3+1)].node.Propose(tctx(t), put(fmt.Sprintf("k%03d", i), fmt.Sprint(i)))
			if err == nil {
				err = res.Err
			}
			if err != nil {
				errs <- err
				return
			}
			revs[i] = res.Resp.(*etcdserverpb.PutResponse).Header.Revision
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for i, r := range revs {
		if r < 2 || r > n+1 || seen[r] {
			t.Fatalf("put %d answered with revision %d (seen before: %v)", i, r, seen[r])
		}
		seen[r] = true
	}
	if batchedEntries.Load() == before {
		t.Fatal("no entry was applied in a run: ApplyBatch never ran")
	}
	for _, m := range c.members {
		for i := 0; i < n; i += 37 {
			r, err := c.get(t, m, fmt.Sprintf("k%03d", i))
			if err != nil || r != fmt.Sprint(i) {
				t.Fatalf("member %d: k%03d = %q, %v", m.id, i, r, err)
			}
		}
		resp, err := m.store.Range(tctx(t), &etcdserverpb.RangeRequest{Key: []byte("k"), RangeEnd: []byte("l"), CountOnly: true})
		if err != nil || resp.Count != n || resp.Header.Revision != n+1 {
			t.Fatalf("member %d: %d keys at revision %d (%v), want %d at %d", m.id, resp.GetCount(), resp.GetHeader().GetRevision(), err, n, n+1)
		}
	}
}
