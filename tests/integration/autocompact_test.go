package integration

import (
	"fmt"
	"testing"
	"time"

	"github.com/synod-db/synod/compactor"
	"github.com/synod-db/synod/server"
)

// TestAutoCompactionRevision: with --auto-compaction-mode=revision and a
// retention of 10, members compact on their own to the current revision
// minus 10 at every check (the check interval, 5 minutes in etcd, is
// shortened here); after a leader change the new leader goes on doing it.
func TestAutoCompactionRevision(t *testing.T) {
	const retention = 10
	c := newCluster(t, 3, func(cfg *server.Config) {
		cfg.AutoCompactionMode, cfg.AutoCompactionRetention = compactor.ModeRevision, fmt.Sprint(retention)
		cfg.AutoCompactionRevisionInterval = 50 * time.Millisecond
	})
	cli := c.client()
	writeAndWait := func(n int) {
		t.Helper()
		var rev int64
		for i := range n {
			resp, err := cli.Put(ctx(t), fmt.Sprintf("ac/%d", i), "v")
			if err != nil {
				t.Fatal(err)
			}
			rev = resp.Header.Revision
		}
		want := rev - retention
		waitUntil(t, 10*time.Second, fmt.Sprintf("every member compacted to %d", want), func() bool {
			for _, m := range c.members {
				if m.Store().CompactRev() != want {
					return false
				}
			}
			return true
		})
	}
	writeAndWait(30)

	lead := c.waitLeader()
	next := (lead + 1) % len(c.members)
	if err := c.members[lead].TransferLeadership(ctx(t), c.members[next].ID()); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "leadership moved", func() bool { return c.waitLeader() == next })
	writeAndWait(25)
}
