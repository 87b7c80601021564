package transport

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// fakeMembership answers the membership RPCs with fixed bytes, and fails a
// change whose op is "fail".
type fakeMembership struct{ ops atomic.Int64 }

func (f *fakeMembership) MemberList(context.Context) ([]byte, error) { return []byte("members"), nil }

func (f *fakeMembership) MemberChange(_ context.Context, op string, req []byte) ([]byte, error) {
	f.ops.Add(1)
	if op == "fail" {
		return nil, errors.New("etcdserver: member not found")
	}
	return append([]byte(op+":"), req...), nil
}

func TestGRPCMembershipRPCs(t *testing.T) {
	fm := &fakeMembership{}
	a := startMember(t, 1, testCluster, Config{})
	b := startMember(t, 2, testCluster, Config{Membership: fm})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	got, err := FetchMembers(ctx, []string{"http://127.0.0.1:1", b.url})
	if err != nil || string(got) != "members" {
		t.Fatalf("FetchMembers: %q, %v", got, err)
	}
	if _, err := FetchMembers(ctx, []string{a.url}); err == nil {
		t.Fatal("a member without Membership answered FetchMembers")
	}

	if _, err := a.tr.ForwardMemberChange(ctx, 2, "add", nil); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("forward to an unknown peer: %v", err)
	}
	a.tr.AddPeer(2, []string{b.url})
	out, err := a.tr.ForwardMemberChange(ctx, 2, "add", []byte("x"))
	if err != nil || string(out) != "add:x" {
		t.Fatalf("forward: %q, %v", out, err)
	}
	_, err = a.tr.ForwardMemberChange(ctx, 2, "fail", nil)
	var re *RemoteError
	if !errors.As(err, &re) || re.Msg != "etcdserver: member not found" {
		t.Fatalf("remote error: %v, want the remote text intact", err)
	}

	// Another cluster's member may not change this one's membership.
	c := startMember(t, 3, 0xbad, Config{})
	c.tr.AddPeer(2, []string{b.url})
	if _, err := c.tr.ForwardMemberChange(ctx, 2, "add", nil); err == nil || errors.As(err, &re) {
		t.Fatalf("forward from another cluster: %v", err)
	}
	if n := fm.ops.Load(); n != 2 {
		t.Fatalf("membership saw %d changes, want 2", n)
	}
}

func TestGRPCActiveSinceAndRemovedMember(t *testing.T) {
	var removed atomic.Bool
	notified := make(chan struct{})
	a := startMember(t, 1, testCluster, Config{OnRemoved: func() { close(notified) }})
	b := startMember(t, 2, testCluster, Config{IsRemoved: func(id uint64) bool { return id == 1 && removed.Load() }})
	if !a.tr.ActiveSince(2).IsZero() {
		t.Fatal("an unknown peer is active")
	}
	a.tr.AddPeer(2, []string{b.url})
	sendUntil(t, a.tr, 1, 2, b.rec)
	since := a.tr.ActiveSince(2)
	if since.IsZero() || since.After(time.Now()) {
		t.Fatalf("ActiveSince after delivery: %v", since)
	}

	removed.Store(true)
	b.rec.clearMsgs()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-notified:
			done = true
		case <-tick.C:
			a.tr.Send([]*raftpb.Message{msg(1, 2, 5, nil)})
		case <-deadline.C:
			t.Fatal("a removed member was never told")
		}
	}
	for _, m := range b.rec.snapshotMsgs() {
		if m.GetFrom() == 1 && m.GetIndex() == 5 {
			t.Fatalf("a removed member's message was processed: %v", m)
		}
	}
	if !strings.Contains(ErrMemberRemoved.Error(), "permanently removed") {
		t.Fatal(ErrMemberRemoved)
	}
}
