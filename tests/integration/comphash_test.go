package integration

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/synod-db/synod/server"
)

// TestCompactHashCheck runs etcd's compaction hash check
// (--feature-gates=CompactHashCheck=true): a compaction of a healthy
// cluster is found alike on every member and raises nothing; after one
// member's history is changed in one value under a valid checksum, the
// next compaction's hash names that member, alone, in a CORRUPT alarm.
func TestCompactHashCheck(t *testing.T) {
	c := newCluster(t, 3, func(cfg *server.Config) {
		cfg.CompactHashCheck = true
		cfg.CompactHashCheckTime = 100 * time.Millisecond
	})
	cli := c.client()
	for i := 0; i < 10; i++ {
		if _, err := cli.Put(ctx(t), fmt.Sprintf("k%d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Put(ctx(t), "corrupt-me", "good-value"); err != nil {
		t.Fatal(err)
	}
	first := compactNow(t, cli)
	eventually(t, "the first compaction found alike on every member", 20*time.Second, func() error {
		lead := c.waitLeader()
		if got := c.members[lead].CompactHashChecked(); got < first {
			return fmt.Errorf("leader's newest compaction found alike: %d, want %d", got, first)
		}
		return nil
	})
	if list, err := cli.AlarmList(ctx(t)); err != nil || len(list.Alarms) != 0 {
		t.Fatalf("alarms after a healthy compaction: %v %v", list, err)
	}

	victim := (c.waitLeader() + 1) % 3
	victimID := c.members[victim].ID()
	stopWithValue(t, c, victim)
	tamperValue(t, filepath.Join(c.cfgs[victim].DataDir, "db"))
	c.start(victim)
	c.waitLeader() // a restarted member answers "no leader" until it hears from one
	for i := 0; i < 10; i++ {
		if _, err := cli.Put(ctx(t), fmt.Sprintf("k%d", i), "w"); err != nil {
			t.Fatal(err)
		}
	}
	compactNow(t, cli)
	eventually(t, "the CORRUPT alarm for the victim", 20*time.Second, func() error {
		list, err := cli.AlarmList(ctx(t))
		if err != nil {
			return err
		}
		if len(list.Alarms) != 1 || list.Alarms[0].MemberID != victimID || list.Alarms[0].Alarm != pb.AlarmType_CORRUPT {
			return fmt.Errorf("alarms %v, want CORRUPT for %x", list.Alarms, victimID)
		}
		return nil
	})
}

// compactNow compacts physically at the current revision and returns it.
func compactNow(t *testing.T, cli *clientv3.Client) int64 {
	t.Helper()
	g, err := cli.Get(ctx(t), "k0")
	if err != nil {
		t.Fatal(err)
	}
	rev := g.Header.Revision
	if _, err := cli.Compact(ctx(t), rev, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	return rev
}
