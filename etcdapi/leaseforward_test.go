package etcdapi

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/synod-db/synod/lease"
	"github.com/synod-db/synod/raftnode"
)

// fakeLeader is a Leader whose leader the test sets.
type fakeLeader struct {
	mu      sync.Mutex
	id      uint64
	changed chan struct{}
}

func newFakeLeader(id uint64) *fakeLeader { return &fakeLeader{id: id, changed: make(chan struct{})} }

func (l *fakeLeader) Leader() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.id
}

func (l *fakeLeader) LeaderChanged() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

func (l *fakeLeader) set(id uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.id = id
	close(l.changed)
	l.changed = make(chan struct{})
}

// fakeForwarder is a RenewalForwarder standing for the transport to the
// leader: it records each batch and answers with answer (the leases found
// missing, or an error); with hold set it waits for the call's context.
type fakeForwarder struct {
	mu      sync.Mutex
	calls   []forwardCall
	hold    bool
	answer  func(cps []*pb.LeaseCheckpoint) ([]int64, error)
	started chan struct{} // receives once per call, if not nil
}

type forwardCall struct {
	leader uint64
	ids    []int64
}

func (f *fakeForwarder) ForwardRenewals(ctx context.Context, leader uint64, req *pb.LeaseCheckpointRequest) ([]int64, error) {
	var ids []int64
	for _, cp := range req.GetCheckpoints() {
		ids = append(ids, cp.GetID())
	}
	f.mu.Lock()
	f.calls = append(f.calls, forwardCall{leader, ids})
	hold, answer := f.hold, f.answer
	f.mu.Unlock()
	if f.started != nil {
		f.started <- struct{}{}
	}
	if hold {
		<-ctx.Done()
		return nil, fmt.Errorf("forward: %w", ctx.Err())
	}
	return answer(req.GetCheckpoints())
}

func (f *fakeForwarder) forwarded() []forwardCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// forwardSetup is a follower (member 1) whose leader is member 2, with a
// proposer that applies at once (lease 7 missing) and a forwarder that
// answers lease 8 missing.
type forwardSetup struct {
	p      *gatedProposer
	f      *fakeForwarder
	leader *fakeLeader
	now    time.Time
	r      *Renewer
}

func newForwardSetup() *forwardSetup {
	s := &forwardSetup{
		p: &gatedProposer{release: make(chan struct{}), answer: missingIf(7)},
		f: &fakeForwarder{answer: func(cps []*pb.LeaseCheckpoint) ([]int64, error) {
			for _, cp := range cps {
				if cp.ID == 8 {
					return []int64{8}, nil
				}
			}
			return nil, nil
		}},
		leader: newFakeLeader(2),
		now:    time.Unix(1000, 0),
	}
	close(s.p.release)
	s.r = NewRenewer(RenewerConfig{Raft: s.p, Leader: s.leader, Self: 1, Forwarder: s.f, Timeout: time.Hour,
		Now: func() time.Time { return s.now }})
	return s
}

// missingIf answers an entry holding lease id with a MissingError for it.
func missingIf(id int64) func([]*pb.LeaseCheckpoint) error {
	return func(cps []*pb.LeaseCheckpoint) error {
		for _, cp := range cps {
			if cp.ID == id {
				return &lease.MissingError{IDs: []int64{id}}
			}
		}
		return nil
	}
}

// renewSome renews ids one after the other and checks each outcome: lease
// gone is answered not renewed, every other one renewed.
func (s *forwardSetup) renewSome(t *testing.T, gone int64, ids ...int64) {
	t.Helper()
	for _, id := range ids {
		ok, err := s.r.renewOne(context.Background(), id, 30)
		if err != nil || ok != (id != gone) {
			t.Fatalf("lease %d: renewed %v, err %v (lease %d should be missing)", id, ok, err, gone)
		}
	}
}

// TestRenewerForwardsToLeader checks that a follower hands its renewals to
// the leader instead of proposing them, and answers each from the leader's
// outcome (a lease the leader's entry found missing: not renewed).
func TestRenewerForwardsToLeader(t *testing.T) {
	s := newForwardSetup()
	s.renewSome(t, 8, 5, 8)
	if got := s.f.forwarded(); len(got) != 2 || got[0].leader != 2 || got[0].ids[0] != 5 || got[1].ids[0] != 8 {
		t.Fatalf("forwarded %v, want leases 5 and 8 to member 2", got)
	}
	if e := s.p.proposed(); len(e) != 0 {
		t.Fatalf("a follower proposed %v itself", e)
	}
}

// TestRenewerProposesWithoutLeaderOrAsLeader checks the cases that propose
// locally as before: no leader known, and this member leads.
func TestRenewerProposesWithoutLeaderOrAsLeader(t *testing.T) {
	s := newForwardSetup()
	s.leader.set(0)
	s.renewSome(t, 7, 5, 7)
	s.leader.set(1)
	s.renewSome(t, 7, 6)
	if got := s.f.forwarded(); len(got) != 0 {
		t.Fatalf("forwarded %v without a leader or as the leader", got)
	}
	if e := s.p.proposed(); len(e) != 3 {
		t.Fatalf("proposed %v, want each of the 3 renewals", e)
	}
}

// TestRenewerLeaderRefuses checks the rolling upgrade: a leader that does
// not serve renewals (ErrRenewalsNotServed) gets the batch proposed
// locally, is not asked again for refusedRetry, and is asked again after.
func TestRenewerLeaderRefuses(t *testing.T) {
	s := newForwardSetup()
	s.f.answer = func([]*pb.LeaseCheckpoint) ([]int64, error) {
		return nil, fmt.Errorf("transport: %w", ErrRenewalsNotServed)
	}
	s.renewSome(t, 7, 5, 6, 7)
	if got := s.f.forwarded(); len(got) != 1 {
		t.Fatalf("asked the refusing leader %d times, want once: %v", len(got), got)
	}
	if e := s.p.proposed(); len(e) != 3 {
		t.Fatalf("proposed %v, want all 3 renewals locally", e)
	}
	s.leader.set(3) // another leader is asked at once
	s.renewSome(t, 7, 5)
	if got := s.f.forwarded(); len(got) != 2 || got[1].leader != 3 {
		t.Fatalf("forwarded %v, want the new leader 3 asked", got)
	}
	s.leader.set(2)
	s.now = s.now.Add(refusedRetry)
	s.renewSome(t, 7, 5)
	if got := s.f.forwarded(); len(got) != 3 || got[2].leader != 2 {
		t.Fatalf("forwarded %v, want leader 2 asked again after %v", got, refusedRetry)
	}
}

// TestRenewerForwardFails checks that a hand-over that fails (unreachable
// leader, its entry failed) is proposed locally, and the follower keeps
// asking the leader afterwards.
func TestRenewerForwardFails(t *testing.T) {
	s := newForwardSetup()
	s.f.answer = func([]*pb.LeaseCheckpoint) ([]int64, error) { return nil, raftnode.ErrTimeout }
	s.renewSome(t, 7, 5, 7)
	if got, e := s.f.forwarded(), s.p.proposed(); len(got) != 2 || len(e) != 2 {
		t.Fatalf("forwarded %v, proposed %v: want both renewals tried on the leader, then proposed", got, e)
	}
}

// TestRenewerForwardLeaderChanges checks that a batch in flight to a
// leader that loses its leadership is given up at once (not after the
// timeout) and proposed locally.
func TestRenewerForwardLeaderChanges(t *testing.T) {
	s := newForwardSetup()
	s.f.hold, s.f.started = true, make(chan struct{}, 1)
	out := renewAll(s.r, []int64{5})
	<-s.f.started
	s.leader.set(3)
	var o renewOutcome
	select {
	case o = <-out:
	case <-time.After(time.Minute): // far below the hand-over's timeout (an hour)
		t.Fatal("the batch in flight was not given up when the leader changed")
	}
	if o.err != nil || !o.renewed {
		t.Fatalf("renewal across a leader change: renewed %v, err %v", o.renewed, o.err)
	}
	if e := s.p.proposed(); len(e) != 1 {
		t.Fatalf("proposed %v, want the batch proposed locally", e)
	}
}

// TestRenewForPeer checks the leader's side: a follower's batch goes into
// the leader's next entry with its own renewals (one entry for both), is
// answered with the leases that entry found missing, and a member that does
// not lead refuses it.
func TestRenewForPeer(t *testing.T) {
	p := &gatedProposer{release: make(chan struct{}), answer: missingIf(7)}
	leader := newFakeLeader(1)
	f := &fakeForwarder{answer: func([]*pb.LeaseCheckpoint) ([]int64, error) { return nil, errors.New("unused") }}
	r := NewRenewer(RenewerConfig{Raft: p, Leader: leader, Self: 1, Forwarder: f, Timeout: time.Minute})
	first := renewAll(r, []int64{100}) // occupies the entry in flight
	waitFor(t, "an entry in flight", func() bool { return len(p.proposed()) == 1 })
	own := renewAll(r, []int64{5, 6})
	type result struct {
		missing []int64
		err     error
	}
	peer := make(chan result, 1)
	go func() {
		m, err := r.RenewForPeer(context.Background(), []*pb.LeaseCheckpoint{{ID: 6, Remaining_TTL: 30}, {ID: 7, Remaining_TTL: 30}})
		peer <- result{m, err}
	}()
	waitFor(t, "every renewal queued", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.queue) == 4
	})
	close(p.release)
	collect(first, 1)
	for _, o := range collect(own, 2) {
		if o.err != nil || !o.renewed {
			t.Fatalf("lease %d: renewed %v, err %v", o.id, o.renewed, o.err)
		}
	}
	if res := <-peer; res.err != nil || !slices.Equal(res.missing, []int64{7}) {
		t.Fatalf("the follower's batch: missing %v, err %v; want [7]", res.missing, res.err)
	}
	if e := p.proposed(); len(e) != 2 || len(e[1]) != 3 {
		t.Fatalf("entries %v: want the follower's renewals in the leader's next entry (5, 6, 7)", e)
	}
	leader.set(2)
	if _, err := r.RenewForPeer(context.Background(), []*pb.LeaseCheckpoint{{ID: 6, Remaining_TTL: 30}}); !errors.Is(err, raftnode.ErrNotLeader) {
		t.Fatalf("a batch on a member that does not lead: %v, want ErrNotLeader", err)
	}
	if got := f.forwarded(); len(got) != 0 {
		t.Fatalf("the leader handed renewals on: %v", got)
	}
}

// TestRenewForPeerNeverHandedOn checks that a batch a follower handed over
// is proposed where it arrived even if that member has lost its leadership
// by the time the entry is made: renewals are handed over once, so two
// members that each think the other leads cannot pass them back and forth.
func TestRenewForPeerNeverHandedOn(t *testing.T) {
	p := &gatedProposer{release: make(chan struct{}), answer: missingIf(7)}
	leader := newFakeLeader(1)
	f := &fakeForwarder{answer: func([]*pb.LeaseCheckpoint) ([]int64, error) { return nil, nil }}
	r := NewRenewer(RenewerConfig{Raft: p, Leader: leader, Self: 1, Forwarder: f, Timeout: time.Minute})
	first := renewAll(r, []int64{100})
	waitFor(t, "an entry in flight", func() bool { return len(p.proposed()) == 1 })
	peer := make(chan error, 1)
	go func() {
		_, err := r.RenewForPeer(context.Background(), []*pb.LeaseCheckpoint{{ID: 6, Remaining_TTL: 30}})
		peer <- err
	}()
	waitFor(t, "the batch queued", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.queue) == 1
	})
	leader.set(2)
	close(p.release)
	collect(first, 1)
	if err := <-peer; err != nil {
		t.Fatalf("the follower's batch: %v", err)
	}
	if got := f.forwarded(); len(got) != 0 {
		t.Fatalf("renewals handed over twice: %v", got)
	}
}
