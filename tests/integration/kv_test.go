package integration

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/synod-db/synod/server"
)

func TestRevisionsAcrossMembers(t *testing.T) {
	c := newCluster(t, 3, nil)
	for i := 0; i < 3; i++ {
		cli := c.client(i)
		resp, err := cli.Put(ctx(t), "k", fmt.Sprintf("v%d", i))
		if err != nil {
			t.Fatalf("put via member %d: %v", i, err)
		}
		// A new cluster starts at revision 1; each put raises it once.
		if want := int64(2 + i); resp.Header.Revision != want {
			t.Fatalf("put %d: revision %d, want %d", i, resp.Header.Revision, want)
		}
	}
	for i := 0; i < 3; i++ {
		g, err := c.client(i).Get(ctx(t), "k")
		if err != nil {
			t.Fatal(err)
		}
		kv := g.Kvs[0]
		if string(kv.Value) != "v2" || kv.CreateRevision != 2 || kv.ModRevision != 4 || kv.Version != 3 {
			t.Fatalf("member %d sees %+v", i, kv)
		}
		if g.Header.ClusterId == 0 || g.Header.MemberId != c.members[i].ID() || g.Header.RaftTerm == 0 {
			t.Fatalf("member %d header %+v", i, g.Header)
		}
	}
}

// A write acknowledged through one member is visible to a linearizable read
// through any other member immediately afterwards.
func TestLinearizableReadOnFollower(t *testing.T) {
	c := newCluster(t, 3, nil)
	lead := c.waitLeader()
	f := (lead + 1) % 3
	wcli, rcli := c.client(lead), c.client(f)
	for i := 0; i < 50; i++ {
		v := fmt.Sprint(i)
		if _, err := wcli.Put(ctx(t), "lin", v); err != nil {
			t.Fatal(err)
		}
		g, err := rcli.Get(ctx(t), "lin")
		if err != nil {
			t.Fatal(err)
		}
		if len(g.Kvs) != 1 || string(g.Kvs[0].Value) != v {
			t.Fatalf("read %d on follower returned %v, want %q", i, g.Kvs, v)
		}
	}
}

func TestFollowerForwardsWrites(t *testing.T) {
	c := newCluster(t, 3, nil)
	lead := c.waitLeader()
	f := (lead + 1) % 3
	if _, err := c.client(f).Put(ctx(t), "fwd", "x"); err != nil {
		t.Fatalf("put through follower: %v", err)
	}
	g, err := c.client(lead).Get(ctx(t), "fwd")
	if err != nil || len(g.Kvs) != 1 {
		t.Fatalf("leader get: %v %v", g, err)
	}
}

// A member that lost its quorum answers "etcdserver: no leader" promptly
// instead of hanging until the client's deadline.
func TestNoLeaderIsPrompt(t *testing.T) {
	c := newCluster(t, 3, nil)
	cli := c.client(0)
	if _, err := cli.Put(ctx(t), "a", "1"); err != nil {
		t.Fatal(err)
	}
	c.stop(1)
	c.stop(2)
	deadline := time.Now().Add(10 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		start := time.Now()
		_, err := cli.Put(cctx, "a", "2")
		cancel()
		if errors.Is(err, rpctypes.ErrNoLeader) {
			if took := time.Since(start); took > 5*time.Second {
				t.Fatalf("no-leader error took %v", took)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("put without quorum: err %v, want %v", err, rpctypes.ErrNoLeader)
		}
	}
	_, err := cli.Get(ctx(t), "a")
	if !errors.Is(err, rpctypes.ErrNoLeader) {
		t.Fatalf("linearizable get without leader: %v, want no leader", err)
	}
	g, err := cli.Get(ctx(t), "a", clientv3.WithSerializable())
	if err != nil || len(g.Kvs) != 1 || string(g.Kvs[0].Value) != "1" {
		t.Fatalf("serializable get without leader: %v %v", g, err)
	}
}

// Stopping and restarting every member loses nothing and keeps revisions.
func TestRestartRecoversState(t *testing.T) {
	c := newCluster(t, 3, nil)
	cli := c.client()
	var last int64
	for i := 0; i < 100; i++ {
		r, err := cli.Put(ctx(t), fmt.Sprintf("key/%03d", i), fmt.Sprint(i))
		if err != nil {
			t.Fatal(err)
		}
		last = r.Header.Revision
	}
	cli.Close()
	c.stopAll()
	for i := range c.members {
		c.start(i)
	}
	c.waitLeader()
	g, err := c.client().Get(ctx(t), "key/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Kvs) != 100 || g.Header.Revision != last {
		t.Fatalf("after restart: %d keys at revision %d, want 100 at %d", len(g.Kvs), g.Header.Revision, last)
	}
}

// A member that falls far behind while the log is truncated catches up
// through a snapshot.
func TestLaggingMemberCatchesUpBySnapshot(t *testing.T) {
	c := newCluster(t, 3, func(cfg *server.Config) { cfg.SnapshotCount = 20 })
	lead := c.waitLeader()
	lag := (lead + 1) % 3
	c.stop(lag)
	other := 3 - lead - lag
	cli := c.client(lead, other)
	var last int64
	for i := 0; i < 300; i++ {
		r, err := cli.Put(ctx(t), fmt.Sprintf("snap/%03d", i), fmt.Sprint(i))
		if err != nil {
			t.Fatal(err)
		}
		last = r.Header.Revision
	}
	c.start(lag)
	lcli := c.client(lag)
	deadline := time.Now().Add(15 * time.Second)
	for {
		g, err := lcli.Get(ctx(t), "snap/", clientv3.WithPrefix(), clientv3.WithSerializable(), clientv3.WithCountOnly())
		caughtUp := err == nil && g.Count == 300 && g.Header.Revision == last
		snaps := c.members[lag].RaftStats().SnapshotsInstalled
		if caughtUp && snaps > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("lagging member: caught up %v (%v, %v), snapshots installed %d; want caught up through a snapshot",
				caughtUp, g, err, snaps)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
