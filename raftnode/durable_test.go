package raftnode

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func TestDurableRun(t *testing.T) {
	ent := func(idx uint64, typ raftpb.EntryType) *raftpb.Entry {
		return &raftpb.Entry{Index: proto.Uint64(idx), Term: proto.Uint64(2), Type: typ.Enum()}
	}
	norm := func(idxs ...uint64) []*raftpb.Entry {
		var es []*raftpb.Entry
		for _, i := range idxs {
			es = append(es, ent(i, raftpb.EntryType_EntryNormal))
		}
		return es
	}
	snap := &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(9), Term: proto.Uint64(2)}}
	cc := ent(6, raftpb.EntryType_EntryConfChange)
	cases := []struct {
		name     string
		durable  uint64
		rd       raft.Ready
		want     int
		follower bool
	}{
		{"nothing committed", 9, raft.Ready{Entries: norm(10)}, 0, false},
		{"all durable, no new entries", 9, raft.Ready{CommittedEntries: norm(5, 6, 7)}, 3, false},
		{"all durable, newer entries to save", 9, raft.Ready{CommittedEntries: norm(5, 6, 7), Entries: norm(10, 11)}, 3, false},
		{"the tail is in this Ready's entries", 6, raft.Ready{CommittedEntries: norm(5, 6, 7, 8), Entries: norm(7, 8)}, 2, false},
		{"the tail is beyond the durable index", 6, raft.Ready{CommittedEntries: norm(5, 6, 7)}, 2, false},
		{"this Ready rewrites durable entries", 9, raft.Ready{CommittedEntries: norm(5, 6, 7), Entries: norm(7, 8)}, 2, false},
		{"nothing durable yet", 0, raft.Ready{CommittedEntries: norm(1, 2), Entries: norm(1, 2)}, 0, false},
		{"a conf change stops the run", 9, raft.Ready{CommittedEntries: []*raftpb.Entry{ent(5, raftpb.EntryType_EntryNormal), cc, ent(7, raftpb.EntryType_EntryNormal)}}, 1, false},
		{"a snapshot: nothing early", 9, raft.Ready{CommittedEntries: norm(5, 6), Snapshot: snap}, 0, false},
		{"a follower: nothing early", 9, raft.Ready{CommittedEntries: norm(5, 6, 7), Entries: norm(10)}, 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := &Core{durable: c.durable}
			if got := n.durableRun(c.rd, !c.follower); got != c.want {
				t.Errorf("durableRun = %d, want %d", got, c.want)
			}
		})
	}
}

// On the leader, a committed entry whose log entry is already durable is
// applied before the leader fsyncs newer entries: at every synced Save of
// the leader, the state has applied every committed entry up to the last
// index an earlier Save made durable. (Applied after the Save, a renewal or
// put committed by the previous round would wait for the flush of the next
// round's entries before it is answered.)
func TestDurableEntriesAppliedBeforeNextSync(t *testing.T) {
	c := newMemCluster(t, 3, 100000)
	lead := c.waitLeader()
	if _, err := c.members[lead].node.Propose(tctx(t), put("k", "v")); err != nil {
		t.Fatal(err)
	}
	c.settle(t)
	var checked, behind atomic.Int64
	var mu sync.Mutex
	var first string
	for _, m := range c.members {
		core := m.node.c
		var prev uint64 // applied at this member's previous sync
		// Runs on the member's raft loop, inside Save, so the loop's own
		// fields are safe to read; durable is still the previous Save's.
		core.cfg.Log.ObserveSync(func(time.Duration) {
			if !core.isLeader.Load() {
				return
			}
			want := min(core.commit.Load(), core.durable)
			applied := core.appliedIndex
			if want > prev {
				checked.Add(1)
			}
			prev = applied
			if applied < want && behind.Add(1) == 1 {
				mu.Lock()
				first = fmt.Sprintf("leader %d synced with applied %d, committed and durable %d", core.cfg.ID, applied, want)
				mu.Unlock()
			}
		})
	}
	var wg sync.WaitGroup
	for g := 0; g < 12; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := c.members[uint64(g%3+1)]
			for i := 0; i < 40; i++ {
				if _, err := m.node.Propose(tctx(t), put(fmt.Sprint("k", g), fmt.Sprint(i))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	c.settle(t)
	for _, m := range c.members {
		m.node.c.cfg.Log.ObserveSync(nil)
	}
	mu.Lock()
	defer mu.Unlock()
	if behind.Load() > 0 {
		t.Fatalf("%d of %d synced Saves ran before entries already durable and committed were applied; first: %s", behind.Load(), checked.Load(), first)
	}
	if checked.Load() < 5 {
		t.Fatalf("only %d of the leader's synced Saves had committed durable entries to apply; the load did not exercise the order", checked.Load())
	}
}
