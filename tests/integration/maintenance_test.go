package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/snapshot"
	"go.uber.org/zap"

	"github.com/synod-db/synod/server"
)

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %v: %v", what, d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dbSize is member i's database size and size in use as Status reports them.
func dbSize(t *testing.T, c *cluster, i int) (int64, int64) {
	st, err := c.client(i).Status(ctx(t), c.endpoint(i))
	if err != nil {
		t.Fatal(err)
	}
	return st.DbSize, st.DbSizeInUse
}

// fillUntilNoSpace overwrites a few keys with 16 KiB values through cli
// until a put fails; it returns that error and the number of puts done.
func fillUntilNoSpace(t *testing.T, cli *clientv3.Client) (error, int) {
	t.Helper()
	val := strings.Repeat("x", 16<<10)
	for i := 0; i < 5000; i++ {
		if _, err := cli.Put(ctx(t), fmt.Sprintf("fill/%d", i%8), val); err != nil {
			return err, i
		}
	}
	t.Fatal("5000 puts of 16 KiB never hit the quota")
	return nil, 0
}

func TestMaintenanceNoSpaceAlarm(t *testing.T) {
	const quota = 6 << 20
	c := newCluster(t, 3, func(cfg *server.Config) {
		cfg.QuotaBackendBytes = quota
		cfg.SnapshotCount = 20 // keep the raft log short, so compaction can bring the size down
	})
	lead := c.waitLeader()
	cli := c.client(lead)
	err, n := fillUntilNoSpace(t, cli)
	if !errors.Is(err, rpctypes.ErrNoSpace) || err.Error() != "etcdserver: mvcc: database space exceeded" {
		t.Fatalf("put %d over the quota failed with %v, want %v", n, err, rpctypes.ErrNoSpace)
	}
	size, inUse := dbSize(t, c, lead)
	t.Logf("quota %d bytes hit after %d puts of 16 KiB; leader db %d bytes, %d in use", quota, n, size, inUse)
	want := &pb.AlarmMember{MemberID: c.members[lead].ID(), Alarm: pb.AlarmType_NOSPACE}
	for i := range c.members {
		mc := c.client(i)
		list, err := mc.AlarmList(ctx(t))
		if err != nil || len(list.Alarms) != 1 || list.Alarms[0].MemberID != want.MemberID || list.Alarms[0].Alarm != want.Alarm {
			t.Fatalf("alarm list on member %d: %v %v, want %v", i, list, err, want)
		}
		st, err := mc.Status(ctx(t), c.endpoint(i))
		if err != nil || len(st.Errors) != 1 || !strings.Contains(st.Errors[0], "NOSPACE") {
			t.Errorf("status errors on member %d: %v %v", i, st, err)
		}
		// Every member refuses writes that add data (on apply, deterministically) ...
		if _, err := mc.Put(ctx(t), "new", "v"); !errors.Is(err, rpctypes.ErrNoSpace) {
			t.Errorf("put through member %d while NOSPACE: %v", i, err)
		}
		if _, err := mc.Txn(ctx(t)).Then(clientv3.OpPut("new", "v")).Commit(); !errors.Is(err, rpctypes.ErrNoSpace) {
			t.Errorf("txn with a put through member %d while NOSPACE: %v", i, err)
		}
		// ... but reads keep working.
		if g, err := mc.Get(ctx(t), "fill/", clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil || g.Count != 8 {
			t.Errorf("get through member %d while NOSPACE: %v %v", i, g, err)
		}
	}
	// Deletes and compaction work while NOSPACE is raised.
	if _, err := cli.Delete(ctx(t), "fill/7"); err != nil {
		t.Fatalf("delete while NOSPACE: %v", err)
	}
	g, err := cli.Get(ctx(t), "fill/0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx(t), g.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatalf("compact while NOSPACE: %v", err)
	}
	// The physical compaction made Pebble drop the old versions: the size in
	// use falls far below the quota on every member without a defragment.
	for i := range c.members {
		eventually(t, fmt.Sprintf("member %d size in use after compaction", i), 10*time.Second, func() error {
			size, inUse := dbSize(t, c, i)
			if inUse >= quota/4 {
				return fmt.Errorf("db %d bytes, %d in use", size, inUse)
			}
			t.Logf("member %d after compaction: db %d bytes, %d in use", i, size, inUse)
			return nil
		})
		if _, err := c.client(i).Defragment(ctx(t), c.endpoint(i)); err != nil {
			t.Fatalf("defragment member %d: %v", i, err)
		}
		size, inUse := dbSize(t, c, i)
		t.Logf("member %d after defragment: db %d bytes, %d in use", i, size, inUse)
	}
	// Still NOSPACE until disarmed.
	if _, err := cli.Put(ctx(t), "new", "v"); !errors.Is(err, rpctypes.ErrNoSpace) {
		t.Errorf("put after compaction, before disarm: %v", err)
	}
	resp, err := c.client((lead+1)%3).AlarmDisarm(ctx(t), (*clientv3.AlarmMember)(want))
	if err != nil || len(resp.Alarms) != 1 {
		t.Fatalf("disarm: %v %v", resp, err)
	}
	for i := range c.members {
		eventually(t, fmt.Sprintf("put through member %d after disarm", i), 5*time.Second, func() error {
			_, err := c.client(i).Put(ctx(t), "new", "v")
			return err
		})
		if list, err := c.client(i).AlarmList(ctx(t)); err != nil || len(list.Alarms) != 0 {
			t.Errorf("alarm list on member %d after disarm: %v %v", i, list, err)
		}
	}
}

// Hash and HashKV agree on every member once they applied the same entries.
func TestMaintenanceHashesAgree(t *testing.T) {
	c := newCluster(t, 3, nil)
	cli := c.client()
	for i := 0; i < 30; i++ {
		if _, err := cli.Put(ctx(t), fmt.Sprintf("h/%d", i%7), fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Delete(ctx(t), "h/3"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx(t), 20); err != nil {
		t.Fatal(err)
	}
	last, err := cli.Put(ctx(t), "h/last", "x")
	if err != nil {
		t.Fatal(err)
	}
	rev := last.Header.Revision
	eventually(t, "equal hashes at revision "+fmt.Sprint(rev), 5*time.Second, func() error {
		var hashes, kvHashes []uint32
		for i := range c.members {
			mc := c.client(i)
			h, err := pb.NewMaintenanceClient(mc.ActiveConnection()).Hash(ctx(t), &pb.HashRequest{})
			if err != nil {
				return err
			}
			if h.Header.Revision != rev {
				return fmt.Errorf("member %d hashed revision %d, want %d", i, h.Header.Revision, rev)
			}
			kv, err := mc.HashKV(ctx(t), c.endpoint(i), rev)
			if err != nil {
				return err
			}
			if kv.CompactRevision != 20 || kv.HashRevision != rev {
				return fmt.Errorf("member %d hashkv %v", i, kv)
			}
			hashes, kvHashes = append(hashes, h.Hash), append(kvHashes, kv.Hash)
		}
		for i := 1; i < len(hashes); i++ {
			if hashes[i] != hashes[0] || kvHashes[i] != kvHashes[0] {
				return fmt.Errorf("hashes %v, hashkv %v differ", hashes, kvHashes)
			}
		}
		return nil
	})
}

func TestMaintenanceSnapshotRestore(t *testing.T) {
	c := newCluster(t, 3, nil)
	cli := c.client()
	for i := 0; i < 50; i++ {
		if _, err := cli.Put(ctx(t), fmt.Sprintf("s/%02d", i%20), fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Delete(ctx(t), "s/05"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx(t), 10); err != nil {
		t.Fatal(err)
	}
	lead := c.waitLeader()
	want, err := c.client(lead).Get(ctx(t), "s/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "backup.db")
	ver, err := snapshot.SaveWithVersion(ctx(t), zap.NewNop(), clientv3.Config{Endpoints: []string{c.endpoint(lead)}}, file)
	if err != nil {
		t.Fatalf("snapshot save: %v", err)
	}
	if ver != "3.7.0" {
		t.Errorf("snapshot version %q", ver)
	}

	// Restore into a new single-member cluster.
	ports := freePorts(t, 2)
	cfg := server.NewConfig()
	cfg.Name = "restored"
	cfg.DataDir = filepath.Join(dir, "restored")
	client, peer := fmt.Sprintf("http://127.0.0.1:%d", ports[0]), fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	cfg.ListenClientURLs, cfg.AdvertiseClientURLs = []string{client}, []string{client}
	cfg.ListenPeerURLs, cfg.InitialAdvertisePeerURLs = []string{peer}, []string{peer}
	cfg.InitialClusterToken = "restored-token"
	cfg.HeartbeatInterval, cfg.ElectionTimeout = 10*time.Millisecond, 100*time.Millisecond
	res, err := server.RestoreSnapshot(cfg, file, server.RestoreOptions{})
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if res.Rev != want.Header.Revision || res.CompactRev != 10 || res.Members != 1 {
		t.Errorf("restore result %+v, want revision %d compacted at 10", res, want.Header.Revision)
	}
	if _, err := server.RestoreSnapshot(cfg, file, server.RestoreOptions{}); !errors.Is(err, server.ErrDataDirExists) {
		t.Errorf("second restore into the same dir: %v", err)
	}
	rc := &cluster{t: t, cfgs: []server.Config{cfg}, members: make([]*server.Member, 1)}
	rc.start(0)
	t.Cleanup(rc.stopAll)
	rc.waitLeader()
	rcli := rc.client(0)
	got, err := rcli.Get(ctx(t), "s/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if got.Header.Revision != want.Header.Revision || len(got.Kvs) != len(want.Kvs) {
		t.Fatalf("restored: revision %d, %d keys; want %d, %d", got.Header.Revision, len(got.Kvs), want.Header.Revision, len(want.Kvs))
	}
	for i := range want.Kvs {
		if got.Kvs[i].String() != want.Kvs[i].String() {
			t.Errorf("restored kv %v, want %v", got.Kvs[i], want.Kvs[i])
		}
	}
	if got.Header.ClusterId == want.Header.ClusterId {
		t.Errorf("restored cluster kept the old cluster ID %x", got.Header.ClusterId)
	}
	mems, err := rcli.MemberList(ctx(t))
	if err != nil || len(mems.Members) != 1 || mems.Members[0].Name != "restored" {
		t.Errorf("restored membership: %v %v", mems, err)
	}
	if _, err := rcli.Get(ctx(t), "s/00", clientv3.WithRev(5)); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Errorf("read below the restored compaction revision: %v", err)
	}
	if p, err := rcli.Put(ctx(t), "after", "restore"); err != nil || p.Header.Revision != want.Header.Revision+1 {
		t.Errorf("put after restore: %v %v", p, err)
	}

	// A flipped bit is caught before anything is created.
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x10
	bad := filepath.Join(dir, "bad.db")
	if err := os.WriteFile(bad, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = filepath.Join(dir, "bad")
	if _, err := server.RestoreSnapshot(cfg, bad, server.RestoreOptions{}); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Errorf("restore of a corrupt file: %v", err)
	}
	if _, err := os.Stat(cfg.DataDir); !os.IsNotExist(err) {
		t.Errorf("a failed restore left %s behind: %v", cfg.DataDir, err)
	}
}

func TestMaintenanceMoveLeader(t *testing.T) {
	c := newCluster(t, 3, nil)
	lead := c.waitLeader()
	target := (lead + 1) % 3
	follower := (lead + 2) % 3
	if _, err := c.client(follower).MoveLeader(ctx(t), c.members[target].ID()); !errors.Is(err, rpctypes.ErrNotLeader) {
		t.Fatalf("move-leader through a follower: %v, want %v", err, rpctypes.ErrNotLeader)
	}
	if _, err := c.client(lead).MoveLeader(ctx(t), 0xdead); !errors.Is(err, rpctypes.ErrBadLeaderTransferee) {
		t.Fatalf("move-leader to a non-member: %v", err)
	}
	if _, err := c.client(lead).MoveLeader(ctx(t), c.members[target].ID()); err != nil {
		t.Fatalf("move-leader: %v", err)
	}
	// It returned once the transfer completed: the old leader already follows.
	st, err := c.members[lead].Status(context.Background())
	if err != nil || st.Leader != c.members[target].ID() {
		t.Fatalf("after move-leader the old leader sees leader %x, want %x", st.Leader, c.members[target].ID())
	}
	if got := c.waitLeader(); got != target {
		t.Fatalf("leader is member %d, want %d", got, target)
	}
	if _, err := c.client(target).Put(ctx(t), "after-move", "x"); err != nil {
		t.Fatal(err)
	}
}

// A raised alarm is replicated state: a member that restarts keeps it, and a
// member that catches up through a raft snapshot receives it; both refuse
// writes on apply until it is disarmed.
func TestMaintenanceAlarmSurvivesRestartAndSnapshot(t *testing.T) {
	c := newCluster(t, 3, func(cfg *server.Config) { cfg.SnapshotCount = 20 })
	lead := c.waitLeader()
	lag := (lead + 1) % 3
	other := 3 - lead - lag
	c.stop(lag)
	cli := c.client(lead, other)
	for i := 0; i < 100; i++ {
		if _, err := cli.Put(ctx(t), fmt.Sprintf("a/%d", i%10), fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	nospace := &pb.AlarmMember{MemberID: c.members[other].ID(), Alarm: pb.AlarmType_NOSPACE}
	mc := pb.NewMaintenanceClient(cli.ActiveConnection())
	if _, err := mc.Alarm(ctx(t), &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: nospace.MemberID, Alarm: nospace.Alarm}); err != nil {
		t.Fatal(err)
	}
	// Entries that write nothing move the log on past the alarm, so the
	// lagging member needs a snapshot that holds it.
	for i := 0; i < 60; i++ {
		if _, err := cli.Delete(ctx(t), "absent"); err != nil {
			t.Fatal(err)
		}
	}
	c.start(lag)
	c.stop(other)
	c.start(other)
	c.waitLeader()
	for _, i := range []int{lag, other} {
		mcli := c.client(i)
		eventually(t, fmt.Sprintf("alarm on member %d", i), 10*time.Second, func() error {
			list, err := mcli.AlarmList(ctx(t))
			if err != nil {
				return err
			}
			if len(list.Alarms) != 1 || list.Alarms[0].MemberID != nospace.MemberID {
				return fmt.Errorf("alarms %v", list.Alarms)
			}
			return nil
		})
		if _, err := mcli.Put(ctx(t), "refused", "v"); !errors.Is(err, rpctypes.ErrNoSpace) {
			t.Errorf("put through member %d with NOSPACE raised: %v", i, err)
		}
	}
	if c.members[lag].RaftStats().SnapshotsInstalled == 0 {
		t.Errorf("the lagging member caught up without a snapshot; the test did not exercise snapshot restore")
	}
	if _, err := c.client(lag).AlarmDisarm(ctx(t), (*clientv3.AlarmMember)(nospace)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.client(other).Put(ctx(t), "accepted", "v"); err != nil {
		t.Errorf("put after disarm: %v", err)
	}
}
