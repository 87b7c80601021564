package etcdapi

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/lease"
	"github.com/synod-db/synod/raftnode"
)

// gatedProposer records the LeaseCheckpoint entries it is asked to propose
// and holds each one until the test releases it; answer decides its outcome.
type gatedProposer struct {
	mu      sync.Mutex
	entries [][]*pb.LeaseCheckpoint
	release chan struct{}
	answer  func([]*pb.LeaseCheckpoint) error
}

func (p *gatedProposer) Propose(ctx context.Context, req *pb.InternalRaftRequest) (proto.Message, error) {
	cps := req.GetLeaseCheckpoint().GetCheckpoints()
	p.mu.Lock()
	p.entries = append(p.entries, cps)
	p.mu.Unlock()
	<-p.release
	if err := p.answer(cps); err != nil {
		return nil, err
	}
	return &pb.LeaseCheckpointResponse{Header: &pb.ResponseHeader{}}, nil
}

func (p *gatedProposer) proposed() [][]*pb.LeaseCheckpoint {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][]*pb.LeaseCheckpoint(nil), p.entries...)
}

// renew is start as one client waits for its renewal: it reports whether the
// lease existed when the entry applied.
func (r *renewer) renew(ctx context.Context, srv proposer, id, ttl int64) (bool, error) {
	done := make(chan *renewal, 1)
	w := &renewal{id: id, ttl: ttl, done: done}
	if err := r.start(srv, w); err != nil {
		return false, err
	}
	select {
	case <-done:
		return w.renewed, w.err
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

type renewOutcome struct {
	id      int64
	renewed bool
	err     error
}

// renewAll starts one renewal per id (each in its own goroutine, like the
// keep-alives of many clients) and returns their outcomes' channel.
func renewAll(r *renewer, p proposer, ids []int64) <-chan renewOutcome {
	out := make(chan renewOutcome, len(ids))
	for _, id := range ids {
		go func() {
			ok, err := r.renew(context.Background(), p, id, 30)
			out <- renewOutcome{id, ok, err}
		}()
	}
	return out
}

// TestRenewerCoalesces checks that renewals arriving while entries are in
// flight go together into one entry (each lease once), that no more than
// maxRenewalEntriesInFlight entries are proposed at once, and that every
// renewal is answered from its entry's outcome: a lease the entry found
// missing is not renewed, the others are.
func TestRenewerCoalesces(t *testing.T) {
	const n = 300
	p := &gatedProposer{release: make(chan struct{}), answer: func(cps []*pb.LeaseCheckpoint) error {
		for _, cp := range cps {
			if cp.ID == 7 {
				return &lease.MissingError{IDs: []int64{7}}
			}
		}
		return nil
	}}
	var r renewer
	// Single renewals occupy every entry allowed in flight...
	var first []<-chan renewOutcome
	for i := range maxRenewalEntriesInFlight {
		first = append(first, renewAll(&r, p, []int64{int64(1000 + i)}))
		waitFor(t, "an entry in flight", func() bool { return len(p.proposed()) == i+1 })
	}
	// ... while n more (every lease twice) queue behind them.
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = int64(i%(n/2) + 1)
	}
	out := renewAll(&r, p, ids)
	waitFor(t, "every renewal queued", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.queue) == n
	})
	close(p.release)
	outcomes := collect(out, n)
	for _, c := range first {
		outcomes = append(outcomes, collect(c, 1)...)
	}
	for _, o := range outcomes {
		if o.err != nil || o.renewed != (o.id != 7) {
			t.Fatalf("lease %d: renewed %v, err %v", o.id, o.renewed, o.err)
		}
	}
	entries := p.proposed()
	if len(entries) != maxRenewalEntriesInFlight+1 || len(entries[maxRenewalEntriesInFlight]) != n/2 {
		t.Fatalf("%d entries (%v) for %d renewals, want the queued ones coalesced into one of %d", len(entries), entries, n, n/2)
	}
	for _, e := range entries {
		seen := map[int64]bool{}
		for _, cp := range e {
			if seen[cp.ID] || cp.Remaining_TTL != 30 {
				t.Fatalf("entry %v: lease %d twice or not renewed for its TTL", e, cp.ID)
			}
			seen[cp.ID] = true
		}
	}
}

// TestRenewerFailedEntry checks that a failed entry fails every renewal in
// it (none is acknowledged) and that the renewer keeps working afterwards.
func TestRenewerFailedEntry(t *testing.T) {
	fail := true
	p := &gatedProposer{release: make(chan struct{}), answer: func([]*pb.LeaseCheckpoint) error {
		if fail {
			return raftnode.ErrNoLeader
		}
		return nil
	}}
	var r renewer
	close(p.release)
	for _, o := range collect(renewAll(&r, p, []int64{1, 2, 3}), 3) {
		if !errors.Is(o.err, raftnode.ErrNoLeader) || o.renewed {
			t.Fatalf("lease %d: renewed %v, err %v; want ErrNoLeader", o.id, o.renewed, o.err)
		}
	}
	waitFor(t, "the flushers to end", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.inFlight == 0
	})
	fail = false
	for _, o := range collect(renewAll(&r, p, []int64{1}), 1) {
		if o.err != nil || !o.renewed {
			t.Fatalf("after a failure: renewed %v, err %v", o.renewed, o.err)
		}
	}
}

// TestRenewerBoundedQueue checks that renewals beyond maxRenewalsQueued are
// refused with ErrTooManyRequests instead of queueing without bound, that
// the queued ones are all answered once entries apply, and that no entry
// carries more than maxRenewalsPerEntry renewals.
func TestRenewerBoundedQueue(t *testing.T) {
	p := &gatedProposer{release: make(chan struct{}), answer: func([]*pb.LeaseCheckpoint) error { return nil }}
	var r renewer
	// Enough to fill the queue however many the entries in flight took.
	total := maxRenewalsQueued + maxRenewalEntriesInFlight*maxRenewalsPerEntry + 100
	out := renewAll(&r, p, make([]int64, total))
	waitFor(t, "the queue to fill", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.queue) == maxRenewalsQueued
	})
	if _, err := r.renew(context.Background(), p, 1, 30); !errors.Is(err, raftnode.ErrTooManyRequests) {
		t.Fatalf("renewal on a full queue: %v, want ErrTooManyRequests", err)
	}
	close(p.release)
	renewed := 0
	for _, o := range collect(out, total) {
		switch {
		case o.err == nil && o.renewed:
			renewed++
		case !errors.Is(o.err, raftnode.ErrTooManyRequests):
			t.Fatalf("renewal: renewed %v, err %v", o.renewed, o.err)
		}
	}
	if renewed < maxRenewalsQueued {
		t.Fatalf("%d renewals answered, want every queued one (%d)", renewed, maxRenewalsQueued)
	}
	for _, e := range p.proposed() {
		if len(e) > maxRenewalsPerEntry {
			t.Fatalf("an entry of %d renewals, bound %d", len(e), maxRenewalsPerEntry)
		}
	}
}

// TestRenewerCallerGivesUp checks that a caller whose context ends stops
// waiting for its entry.
func TestRenewerCallerGivesUp(t *testing.T) {
	p := &gatedProposer{release: make(chan struct{}), answer: func([]*pb.LeaseCheckpoint) error { return nil }}
	defer close(p.release)
	var r renewer
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.renew(ctx, p, 1, 30); !errors.Is(err, context.Canceled) {
		t.Fatalf("renewal with a cancelled context: %v", err)
	}
}

func collect(out <-chan renewOutcome, n int) []renewOutcome {
	var os []renewOutcome
	for range n {
		os = append(os, <-out)
	}
	return os
}
