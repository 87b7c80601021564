package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestAutoCompactionPeriodic: with --auto-compaction-mode=periodic and a
// retention of 2s, a cluster compacts its history on its own, and only the
// leader does it (its log alone says "completed auto periodic
// compaction"), in etcd as in synod.
func TestAutoCompactionPeriodic(t *testing.T) {
	for _, kind := range kinds() {
		t.Run(kind, func(t *testing.T) {
			cl := startCluster(t, kind, 3, "--auto-compaction-mode=periodic", "--auto-compaction-retention=2s")
			lead := cl.WaitLeader(startTimeout)
			cli := newClient(t, cl.Endpoints()...)
			put := func(k string) int64 {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				resp, err := cli.Put(ctx, k, "v")
				if err != nil {
					t.Fatalf("%s: put %s: %v", kind, k, err)
				}
				return resp.Header.Revision
			}
			first := put("ac/first")
			// Keep writing until the revision of the first write is
			// compacted: a compaction at a revision sampled after it.
			n := 0
			err := waitFor(30*time.Second, 100*time.Millisecond, func() (bool, error) {
				n++
				put(fmt.Sprintf("ac/%d", n))
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_, err := cli.Get(ctx, "ac/first", clientv3.WithRev(first))
				if errors.Is(err, rpctypes.ErrCompacted) {
					return true, nil
				}
				return false, fmt.Errorf("get at revision %d: %v", first, err)
			})
			if err != nil {
				t.Fatalf("%s: no automatic compaction: %v", kind, err)
			}
			if cl.WaitLeader(startTimeout) != lead {
				t.Logf("%s: leadership moved during the test; not checking which member compacted", kind)
				return
			}
			for i, m := range cl.Members {
				did := strings.Contains(m.LogText(), "completed auto periodic compaction")
				if did != (i == lead) {
					t.Errorf("%s: %s (leader: %v) logged a completed auto compaction: %v", kind, m.Name, i == lead, did)
				}
			}
		})
	}
}
