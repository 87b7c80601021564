package raftnode

import (
	"sync/atomic"
	"testing"
	"time"
)

// syncCounter counts the synced log writes of every member of c.
type syncCounter struct{ n map[uint64]*atomic.Int64 }

func countSyncs(c *memCluster) syncCounter {
	sc := syncCounter{n: map[uint64]*atomic.Int64{}}
	for id, m := range c.members {
		cnt := &atomic.Int64{}
		sc.n[id] = cnt
		m.node.c.cfg.Log.ObserveSync(func(time.Duration) { cnt.Add(1) })
	}
	return sc
}

func (sc syncCounter) total() int64 {
	var t int64
	for _, c := range sc.n {
		t += c.Load()
	}
	return t
}

// settle waits until every member has stored and applied the same last
// entry, so nothing is left in flight that would have to be synced.
func (c *memCluster) settle(t *testing.T) {
	waitFor(t, func() bool {
		var last, applied uint64
		for _, m := range c.members {
			l, a := m.node.c.lastIdx.Load(), m.node.AppliedIndex()
			if last == 0 {
				last, applied = l, a
			}
			if l != last || a != applied || a != l {
				return false
			}
		}
		return true
	})
}

// A linearizable read appends nothing to the log, so neither its ReadIndex
// round (a heartbeat broadcast and the answers) nor the heartbeats around it
// may fsync on any member: a sync per Ready would put a disk flush on the
// latency path of every read.
func TestReadIndexDoesNotSync(t *testing.T) {
	c := newMemCluster(t, 3, 10000)
	lead := c.waitLeader()
	if _, err := c.members[lead].node.Propose(tctx(t), put("k", "v")); err != nil {
		t.Fatal(err)
	}
	for attempt := 0; attempt < 5; attempt++ {
		c.settle(t)
		term := c.members[lead].node.Term()
		sc := countSyncs(c)
		for i := 0; i < 30; i++ {
			for _, m := range c.members {
				if err := m.node.ReadIndex(tctx(t)); err != nil {
					t.Fatal(err)
				}
			}
		}
		if c.members[lead].node.Term() != term || c.members[lead].node.Leader() != lead {
			lead = c.waitLeader() // an election under load syncs legitimately; measure again
			continue
		}
		if got := sc.total(); got != 0 {
			t.Fatalf("90 ReadIndex calls with an unchanged log caused %d fsyncs, want 0", got)
		}
		return
	}
	t.Skip("the leader kept changing; could not measure a quiet cluster")
}
