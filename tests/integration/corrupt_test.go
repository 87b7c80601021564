package integration

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/synod-db/synod/internal/tamper"
	"github.com/synod-db/synod/server"
)

// TestCorruptionCheck gives one member a history that differs from the
// others' in one value, under valid checksums (what a bug, or memory
// corrupted before the checksum was taken, leaves behind), and checks that
// the leader's periodic check names that member in a CORRUPT alarm, that
// every member then refuses every write with etcd's error while reads go
// on, and that disarming the alarm lets writes through again. A check of
// the healthy cluster raises nothing.
func TestCorruptionCheck(t *testing.T) {
	c := newCluster(t, 3, func(cfg *server.Config) { cfg.CorruptCheckTime = 200 * time.Millisecond })
	cli := c.client()
	for i := 0; i < 20; i++ {
		if _, err := cli.Put(ctx(t), fmt.Sprintf("k%02d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Put(ctx(t), "corrupt-me", "good-value"); err != nil {
		t.Fatal(err)
	}
	lead := c.waitLeader()
	if err := c.members[lead].CheckCorruption(ctx(t)); err != nil {
		t.Fatalf("check of the healthy cluster: %v", err)
	}
	if a := c.members[lead].Alarms(); len(a) != 0 {
		t.Fatalf("alarms after checking a healthy cluster: %v", a)
	}

	victim := (lead + 1) % 3
	victimID := c.members[victim].ID()
	stopWithValue(t, c, victim)
	tamperValue(t, filepath.Join(c.cfgs[victim].DataDir, "db"))
	c.start(victim)

	want := &pb.AlarmMember{MemberID: victimID, Alarm: pb.AlarmType_CORRUPT}
	eventually(t, "the CORRUPT alarm for the victim", 20*time.Second, func() error {
		list, err := cli.AlarmList(ctx(t))
		if err != nil {
			return err
		}
		if len(list.Alarms) != 1 || list.Alarms[0].MemberID != want.MemberID || list.Alarms[0].Alarm != want.Alarm {
			return fmt.Errorf("alarms %v, want %v", list.Alarms, want)
		}
		return nil
	})
	// The check can name the victim as soon as it answers for its revision,
	// which a restarted member does before it has heard from the leader:
	// wait until every member knows the leader, or writes through the
	// victim would fail with "no leader" instead.
	c.waitLeader()
	for i := range c.members {
		mc := c.client(i)
		writes := map[string]func() error{
			"put":     func() error { _, err := mc.Put(ctx(t), "k00", "w"); return err },
			"delete":  func() error { _, err := mc.Delete(ctx(t), "k01"); return err },
			"txn":     func() error { _, err := mc.Txn(ctx(t)).Then(clientv3.OpPut("k02", "w")).Commit(); return err },
			"compact": func() error { _, err := mc.Compact(ctx(t), 2); return err },
			"lease":   func() error { _, err := mc.Grant(ctx(t), 60); return err },
			"read-write": func() error {
				_, err := mc.Txn(ctx(t)).Then(clientv3.OpGet("k03"), clientv3.OpDelete("k04")).Commit()
				return err
			},
		}
		for name, write := range writes {
			if err := write(); !errors.Is(err, rpctypes.ErrCorrupt) || err.Error() != "etcdserver: corrupt cluster" {
				t.Errorf("%s through member %d while CORRUPT: %v, want %v", name, i, err, rpctypes.ErrCorrupt)
			}
		}
		if g, err := mc.Get(ctx(t), "k", clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil || g.Count != 20 {
			t.Errorf("get through member %d while CORRUPT: %v %v", i, g, err)
		}
		if _, err := mc.Txn(ctx(t)).Then(clientv3.OpGet("k00")).Commit(); err != nil {
			t.Errorf("read-only txn through member %d while CORRUPT: %v", i, err)
		}
	}
	// Recovery begins by taking the divergent member out; the check would
	// raise the alarm again while it answers. A check already under way
	// may still raise it once, so disarm until a write goes through.
	c.stop(victim)
	rest := c.client(lead)
	eventually(t, "a write after disarming", 10*time.Second, func() error {
		if _, err := rest.AlarmDisarm(ctx(t), (*clientv3.AlarmMember)(want)); err != nil {
			return err
		}
		_, err := rest.Put(ctx(t), "k00", "after")
		return err
	})
}

// TestInitialCorruptionCheck restarts a member with etcd's initial
// corruption check: with a history like its peers' it starts; with one
// value changed under a valid checksum it refuses to start and says why.
func TestInitialCorruptionCheck(t *testing.T) {
	c := newCluster(t, 3, nil)
	cli := c.client()
	if _, err := cli.Put(ctx(t), "corrupt-me", "good-value"); err != nil {
		t.Fatal(err)
	}
	lead := c.waitLeader()
	victim := (lead + 1) % 3
	stopWithValue(t, c, victim)
	c.cfgs[victim].InitialCorruptCheck = true
	c.start(victim) // fails the test if the healthy member does not start
	c.stop(victim)

	tamperValue(t, filepath.Join(c.cfgs[victim].DataDir, "db"))
	m, err := server.New(c.cfgs[victim], testLogger())
	if !errors.Is(err, server.ErrInconsistentPeers) {
		if m != nil {
			m.Start() // Stop waits for what Start runs
			m.Stop()
		}
		t.Fatalf("start of the corrupted member with the initial check: %v, want %v", err, server.ErrInconsistentPeers)
	}
	// Without the check it starts (the periodic check would catch it).
	c.cfgs[victim].InitialCorruptCheck = false
	c.start(victim)
}

// stopWithValue stops member i once it has applied the put of
// "corrupt-me".
func stopWithValue(t *testing.T, c *cluster, i int) {
	t.Helper()
	eventually(t, fmt.Sprintf("member %d applies the put", i), 10*time.Second, func() error {
		g, err := c.client(i).Get(ctx(t), "corrupt-me", clientv3.WithSerializable())
		if err != nil || len(g.Kvs) != 1 {
			return fmt.Errorf("%v %v", g, err)
		}
		return nil
	})
	c.stop(i)
}

// tamperValue changes the stored "corrupt-me" of a stopped member under a
// valid checksum.
func tamperValue(t *testing.T, dir string) {
	t.Helper()
	if err := tamper.RewriteValue(dir, "corrupt-me", "good-value", "evil-value"); err != nil {
		t.Fatal(err)
	}
}
