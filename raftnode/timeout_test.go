package raftnode

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestRequestTimeoutBoundsWaits checks that the member's request timeout,
// not only the caller's context, ends a proposal's and a linearizable
// read's wait while applying is stalled, with etcd's "request timed out",
// and that the member serves again once applying resumes.
func TestRequestTimeoutBoundsWaits(t *testing.T) {
	c := newMemCluster(t, 1, 0)
	const timeout = 300 * time.Millisecond
	c.timeout = timeout
	fs := c.members[1].fs
	c.stop(1)
	c.start(1, fs)
	c.waitLeader()
	n := c.members[1].node
	if _, err := n.Propose(tctx(t), put("a", "1")); err != nil {
		t.Fatal(err)
	}

	c.stall.Lock()
	stalled := true
	defer func() {
		if stalled {
			c.stall.Unlock()
		}
	}()
	for round := range 3 { // timers are recycled: every round must time out afresh
		start := time.Now()
		_, err := n.Propose(context.Background(), put("b", "2"))
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("round %d: stalled proposal: got %v, want ErrTimeout", round, err)
		}
		if took := time.Since(start); took < timeout || took > 10*timeout {
			t.Fatalf("round %d: stalled proposal ended after %v, want about %v", round, took, timeout)
		}
		start = time.Now()
		if err := n.ReadIndex(context.Background()); !errors.Is(err, ErrTimeout) {
			t.Fatalf("round %d: read while stalled: got %v, want ErrTimeout", round, err)
		}
		if took := time.Since(start); took < timeout {
			t.Fatalf("round %d: read ended after %v, before the request timeout", round, took)
		}
	}
	// The caller's own, shorter deadline still wins.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := n.Propose(ctx, put("c", "3")); !errors.Is(err, ErrTimeout) || time.Since(start) >= timeout {
		t.Fatalf("caller deadline: got %v after %v", err, time.Since(start))
	}

	c.stall.Unlock()
	stalled = false
	for i := range 5 { // a recycled timer must not fire early into a later call
		if _, err := n.Propose(tctx(t), put("d", "4")); err != nil {
			t.Fatalf("proposal %d after the stall: %v", i, err)
		}
		if err := n.ReadIndex(tctx(t)); err != nil {
			t.Fatalf("read %d after the stall: %v", i, err)
		}
	}
}
