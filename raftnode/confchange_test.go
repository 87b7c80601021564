package raftnode

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/synod-db/synod/mvcc"
	"github.com/synod-db/synod/storage"
	"github.com/synod-db/synod/transport"
)

var errTestRejected = errors.New("test: conf change rejected")

// vetoApplier rejects conf changes for node 99, as the server's membership
// validation rejects invalid changes, and records the verdict.
type vetoApplier struct {
	testApplier
	mu       sync.Mutex
	rejected map[uint64]bool
}

func (a *vetoApplier) ApplyConfChange(i, t uint64, cc *raftpb.ConfChange) (Result, error) {
	if err := a.s.ApplyOther(i, t, nil); err != nil {
		return Result{}, err
	}
	if cc.GetNodeId() == 99 {
		a.mu.Lock()
		a.rejected[i] = true
		a.mu.Unlock()
		return Result{Err: errTestRejected}, nil
	}
	return Result{}, nil
}

func (a *vetoApplier) ConfChangeRejected(i uint64) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.rejected[i], nil
}

// newManualNode starts a single-member cluster whose clock advances only
// when the test ticks it, so nothing times out behind the test's back.
func newManualNode(t *testing.T) (*Node, chan struct{}) {
	t.Helper()
	db, err := pebble.Open("db", &pebble.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	log, err := storage.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	st, err := mvcc.Open(db, mvcc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ticks := make(chan struct{})
	n, err := New(Config{
		ID: 1, Peers: []raft.Peer{{ID: 1}}, ElectionTicks: 10, HeartbeatTicks: 1, Ticks: ticks,
		RequestTimeout: 30 * time.Second, Log: log,
		Applier: &vetoApplier{testApplier: testApplier{s: st, db: db}, rejected: map[uint64]bool{}},
		SnapDir: filepath.Join(t.TempDir(), "snap"),
	})
	if err != nil {
		t.Fatal(err)
	}
	n.Start(transport.NewMemNetwork().Join(1, n))
	t.Cleanup(func() {
		n.Stop()
		st.Close()
		db.Close()
	})
	deadline := time.Now().Add(10 * time.Second)
	for n.Leader() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("single member did not elect itself")
		}
		select {
		case ticks <- struct{}{}:
		case <-time.After(time.Millisecond):
		}
	}
	return n, ticks
}

func confChange(typ raftpb.ConfChangeType, id uint64) *raftpb.ConfChange {
	return &raftpb.ConfChange{Type: typ.Enum(), NodeId: &id}
}

func TestConfChangeAppliedAndRejected(t *testing.T) {
	n, _ := newManualNode(t)
	ctx := tctx(t)
	res, err := n.ProposeConfChange(ctx, confChange(raftpb.ConfChangeType_ConfChangeAddLearnerNode, 5))
	if err != nil || res.Err != nil {
		t.Fatalf("add learner: %v %v", err, res.Err)
	}
	res, err = n.ProposeConfChange(ctx, confChange(raftpb.ConfChangeType_ConfChangeAddNode, 99))
	if err != nil || !errors.Is(res.Err, errTestRejected) {
		t.Fatalf("rejected change answered %v, %v; want the applier's verdict", err, res.Err)
	}
	st, err := n.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.Progress[99]; ok {
		t.Fatalf("raft knows the rejected node 99: %v", st.Config)
	}
	if _, ok := st.Config.Learners[5]; !ok {
		t.Fatalf("learner 5 missing from %v", st.Config)
	}
}

// TestConfChangeDroppedAnswersPromptly: while one change cannot commit (the
// new voter 2 never answers, and no tick lets anything time out), raft drops
// the next; its caller hears so at once rather than at the request timeout.
func TestConfChangeDroppedAnswersPromptly(t *testing.T) {
	n, _ := newManualNode(t)
	ctx := tctx(t)
	if _, err := n.ProposeConfChange(ctx, confChange(raftpb.ConfChangeType_ConfChangeAddNode, 2)); err != nil {
		t.Fatal(err)
	}
	stuckCtx, cancel := context.WithCancel(ctx)
	stuck := make(chan error, 1)
	go func() {
		_, err := n.ProposeConfChange(stuckCtx, confChange(raftpb.ConfChangeType_ConfChangeAddNode, 3))
		stuck <- err
	}()
	waitFor(t, func() bool { return n.c.lastIdx.Load() > n.AppliedIndex() })
	start := time.Now()
	_, err := n.ProposeConfChange(ctx, confChange(raftpb.ConfChangeType_ConfChangeAddLearnerNode, 4))
	if !errors.Is(err, ErrConfChangePending) {
		t.Fatalf("second change: %v, want ErrConfChangePending", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("dropped change answered only after %v", time.Since(start))
	}
	cancel()
	if err := <-stuck; !errors.Is(err, context.Canceled) {
		t.Fatalf("uncommittable change: %v, want its context's cancellation", err)
	}
}
