package integration

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/synod-db/synod/server"
)

// memberConfig is the config of a new member m<i> that joins c (started
// with --initial-cluster-state existing), listing every current member and
// itself in --initial-cluster, as etcdctl member add prints it.
func (c *cluster) memberConfig(i int) server.Config {
	c.t.Helper()
	ports := freePorts(c.t, 2)
	cfg := c.cfgs[0]
	cfg.Name = fmt.Sprintf("m%d", i)
	cfg.DataDir = filepath.Join(filepath.Dir(c.cfgs[0].DataDir), cfg.Name)
	client := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	cfg.ListenClientURLs, cfg.AdvertiseClientURLs = []string{client}, []string{client}
	cfg.ListenPeerURLs, cfg.InitialAdvertisePeerURLs = []string{peer}, []string{peer}
	var initial []string
	for _, o := range c.cfgs {
		initial = append(initial, o.Name+"="+o.InitialAdvertisePeerURLs[0])
	}
	cfg.InitialCluster = strings.Join(append(initial, cfg.Name+"="+peer), ",")
	cfg.InitialClusterState = "existing"
	return cfg
}

// calmer slows raft's clock for membership tests: a cluster that grows a
// voter needs more members active, and on a loaded 2-core machine 100 ms
// elections make leadership churn that is not what these tests are about.
func calmer(cfg *server.Config) {
	cfg.HeartbeatInterval = 25 * time.Millisecond
	cfg.ElectionTimeout = 400 * time.Millisecond
}

// putEventually puts through cli until it succeeds (the member may still be
// learning who leads), failing the test after a deadline.
func putEventually(t *testing.T, cli *clientv3.Client, key string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := cli.Put(ctx(t), key, "1")
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("put %s: %v", key, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// whenHealthy retries op while the strict reconfiguration check answers
// "unhealthy cluster": peers count as active only after being connected
// for 5 s (etcd's HealthInterval), so a fresh cluster refuses changes at
// first. It returns op's first other result.
func whenHealthy(t *testing.T, op func(context.Context) error) error {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := op(ctx(t))
		if !errors.Is(err, rpctypes.ErrUnhealthy) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond) // the check is time-based: poll it
	}
}

// writer puts w/<n> keys until stopped and records the acknowledged ones.
type writer struct {
	mu    sync.Mutex
	acked []string
	stop  chan struct{}
	done  chan struct{}
}

func startWriter(t *testing.T, cli *clientv3.Client) *writer {
	w := &writer{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for i := 0; i < 1_000_000; i++ {
			select {
			case <-w.stop:
				return
			default:
			}
			key := fmt.Sprintf("w/%07d", i)
			c, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			_, err := cli.Put(c, key, "v")
			cancel()
			if err == nil {
				w.mu.Lock()
				w.acked = append(w.acked, key)
				w.mu.Unlock()
			}
		}
	}()
	t.Cleanup(w.finish)
	return w
}

func (w *writer) finish() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

func (w *writer) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// waitWrites waits until the writer has n more acknowledged writes.
func (w *writer) waitWrites(t *testing.T, n int) {
	t.Helper()
	target := w.count() + n
	deadline := time.Now().Add(30 * time.Second)
	for w.count() < target {
		if time.Now().After(deadline) {
			t.Fatalf("writer stalled at %d acknowledged writes", w.count())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (c *cluster) index(id uint64) int {
	for i, m := range c.members {
		if m != nil && m.ID() == id {
			return i
		}
	}
	return -1
}

// TestMemberLearnerLifecycle adds a learner, starts it against the running
// cluster, promotes it once it is in sync, then removes the leader, all
// while a writer writes; every acknowledged write is on every member at the
// end, and the removed leader stops.
func TestMemberLearnerLifecycle(t *testing.T) {
	c := newCluster(t, 3, calmer)
	w := startWriter(t, c.client(0, 1, 2))
	w.waitWrites(t, 20)
	admin := c.client(0, 1, 2)

	cfg := c.memberConfig(3)
	var add *clientv3.MemberAddResponse
	err := whenHealthy(t, func(ctx context.Context) (err error) {
		add, err = admin.MemberAddAsLearner(ctx, cfg.InitialAdvertisePeerURLs)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	newID := add.Member.ID
	if !add.Member.IsLearner || add.Member.Name != "" || len(add.Members) != 4 || add.Header.ClusterId == 0 {
		t.Fatalf("member add response: %v", add)
	}
	// The learner is not started: it cannot be in sync with the leader.
	if _, err := admin.MemberPromote(ctx(t), newID); !errors.Is(err, rpctypes.ErrMemberLearnerNotReady) {
		t.Fatalf("promote before the learner started: %v", err)
	}
	if _, err := admin.MemberAddAsLearner(ctx(t), []string{"http://127.0.0.1:1"}); !errors.Is(err, rpctypes.ErrTooManyLearners) {
		t.Fatalf("second learner: %v", err)
	}

	c.cfgs = append(c.cfgs, cfg)
	c.members = append(c.members, nil)
	c.start(3)
	if c.members[3].ID() != newID {
		t.Fatalf("joined as %x, added as %x", c.members[3].ID(), newID)
	}
	w.waitWrites(t, 20)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := admin.MemberPromote(ctx(t), newID)
		if err == nil {
			break
		}
		if !errors.Is(err, rpctypes.ErrMemberLearnerNotReady) || time.Now().After(deadline) {
			t.Fatalf("promote: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // the learner is catching up
	}
	list, err := admin.MemberList(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range list.Members {
		if m.IsLearner {
			t.Fatalf("after promotion: %v", list.Members)
		}
	}
	if _, err := admin.MemberPromote(ctx(t), newID); !errors.Is(err, rpctypes.ErrMemberNotLearner) {
		t.Fatalf("promote a voter: %v", err)
	}

	w.waitWrites(t, 20)
	lead := c.waitLeader()
	leadID := c.members[lead].ID()
	other := (lead + 1) % 4
	rm, err := c.client(other).MemberRemove(ctx(t), leadID)
	if err != nil {
		t.Fatalf("remove the leader: %v", err)
	}
	if len(rm.Members) != 3 {
		t.Fatalf("members after removing the leader: %v", rm.Members)
	}
	select {
	case <-c.members[lead].Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the removed leader did not stop")
	}
	if !c.members[lead].Removed() {
		t.Fatal("the removed leader stopped without knowing it was removed")
	}
	c.stop(lead)
	c.waitLeader()
	w.waitWrites(t, 20)
	w.finish()

	want := w.count()
	for i, m := range c.members {
		if m == nil {
			continue
		}
		got, err := c.client(i).Get(ctx(t), "w/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil {
			t.Fatalf("member %d: %v", i, err)
		}
		have := map[string]bool{}
		for _, kv := range got.Kvs {
			have[string(kv.Key)] = true
		}
		w.mu.Lock()
		for _, k := range w.acked {
			if !have[k] {
				t.Errorf("member %d lost acknowledged write %s", i, k)
			}
		}
		w.mu.Unlock()
	}
	t.Logf("%d acknowledged writes checked on 3 members", want)
}

// TestMemberChangeErrors covers etcd's errors for invalid changes and the
// strict reconfiguration check with a member down, and shows that a member
// removed while down is refused (and stops) when it comes back.
func TestMemberChangeErrors(t *testing.T) {
	c := newCluster(t, 3, calmer)
	lead := c.waitLeader()
	down := (lead + 1) % 3
	live := (lead + 2) % 3
	cli := c.client(live)

	// A member that was never added cannot join.
	stranger := c.memberConfig(7)
	if m, err := server.New(stranger, nil); err == nil || !strings.Contains(err.Error(), "has not been added to cluster") {
		if m != nil {
			m.Stop()
		}
		t.Fatalf("joining without member add: %v", err)
	}

	if _, err := cli.MemberRemove(ctx(t), 0xdead); !errors.Is(err, rpctypes.ErrMemberNotFound) {
		t.Fatalf("remove unknown: %v", err)
	}
	if _, err := cli.MemberPromote(ctx(t), c.members[down].ID()); !errors.Is(err, rpctypes.ErrMemberNotLearner) {
		t.Fatalf("promote voter: %v", err)
	}
	if _, err := cli.MemberUpdate(ctx(t), 0xdead, []string{"http://127.0.0.1:1"}); !errors.Is(err, rpctypes.ErrMemberNotFound) {
		t.Fatalf("update unknown: %v", err)
	}
	err := whenHealthy(t, func(ctx context.Context) error {
		_, err := cli.MemberAdd(ctx, c.cfgs[down].InitialAdvertisePeerURLs)
		return err
	})
	if !errors.Is(err, rpctypes.ErrPeerURLExist) {
		t.Fatalf("add with a member's peer URL: %v", err)
	}
	// A learner that never started can be removed; the same peer URLs
	// added again get a new ID, even within the same second.
	spare := []string{fmt.Sprintf("http://127.0.0.1:%d", freePorts(t, 1)[0])}
	first, err := cli.MemberAddAsLearner(ctx(t), spare)
	if err != nil {
		t.Fatalf("add learner: %v", err)
	}
	if _, err := cli.MemberRemove(ctx(t), first.Member.ID); err != nil {
		t.Fatalf("remove learner: %v", err)
	}
	again, err := cli.MemberAddAsLearner(ctx(t), spare)
	if err != nil {
		t.Fatalf("re-add: %v", err)
	}
	if again.Member.ID == first.Member.ID {
		t.Fatalf("re-add reused the removed ID %x", first.Member.ID)
	}
	if _, err := cli.MemberRemove(ctx(t), again.Member.ID); err != nil {
		t.Fatalf("remove learner: %v", err)
	}

	// clientv3 checks URLs itself; the raw API must too.
	raw := pb.NewClusterClient(cli.ActiveConnection())
	if _, err := raw.MemberAdd(ctx(t), &pb.MemberAddRequest{PeerURLs: []string{"not-a-url"}}); rpctypes.Error(err) != rpctypes.ErrMemberBadURLs {
		t.Fatalf("add with a bad URL: %v", err)
	}

	downID := c.members[down].ID()
	c.stop(down)
	deadline := time.Now().Add(30 * time.Second)
	for !c.members[lead].PeerActiveSince(downID).IsZero() {
		if time.Now().After(deadline) {
			t.Fatal("the leader never noticed a member stopped")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := cli.MemberAdd(ctx(t), []string{"http://127.0.0.1:2"}); !errors.Is(err, rpctypes.ErrUnhealthy) {
		t.Fatalf("add a voter with a member down: %v", err)
	}
	if _, err := cli.MemberRemove(ctx(t), c.members[live].ID()); !errors.Is(err, rpctypes.ErrUnhealthy) {
		t.Fatalf("remove a live voter with another down: %v", err)
	}
	// A member that is down is no part of the active quorum: removing it is fine.
	if _, err := cli.MemberRemove(ctx(t), downID); err != nil {
		t.Fatalf("remove the member that is down: %v", err)
	}
	if _, err := cli.MemberRemove(ctx(t), downID); !errors.Is(err, rpctypes.ErrMemberNotFound) {
		t.Fatalf("remove it twice: %v", err)
	}

	// Back from the dead, it is refused by the others and stops.
	c.start(down)
	select {
	case <-c.members[down].Done():
	case <-time.After(30 * time.Second):
		t.Fatal("a removed member kept running")
	}
	if !c.members[down].Removed() {
		t.Fatal("the removed member stopped for another reason")
	}
	if _, err := cli.Put(ctx(t), "still", "works"); err != nil {
		t.Fatal(err)
	}
}

// TestRejectedChangeStaysRejectedAfterRestart: a change rejected when it was
// applied is replayed from the log after a restart; raft must see it as the
// empty change again. On a one-member cluster a replayed add of a phantom
// voter would leave the member without a quorum, hence without a leader.
func TestRejectedChangeStaysRejectedAfterRestart(t *testing.T) {
	c := newCluster(t, 1, calmer)
	cli := c.client(0)
	if _, err := cli.MemberAdd(ctx(t), c.cfgs[0].InitialAdvertisePeerURLs); !errors.Is(err, rpctypes.ErrPeerURLExist) {
		t.Fatalf("add with the member's own peer URL: %v", err)
	}
	if _, err := cli.Put(ctx(t), "before", "restart"); err != nil {
		t.Fatal(err)
	}
	c.stop(0)
	c.start(0)
	c.waitLeader()
	if _, err := c.client(0).Put(ctx(t), "after", "restart"); err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	list, err := c.client(0).MemberList(ctx(t))
	if err != nil || len(list.Members) != 1 {
		t.Fatalf("members after the restart: %v, %v", list, err)
	}
}

// TestMemberAddVoterAndUpdatePeerURLs adds a voting member directly, starts
// it, then moves another member to a new peer port with member update; the
// cluster keeps working through both changes, with every member serving.
func TestMemberAddVoterAndUpdatePeerURLs(t *testing.T) {
	c := newCluster(t, 3, calmer)
	admin := c.client(0, 1, 2)
	cfg := c.memberConfig(3)
	var add *clientv3.MemberAddResponse
	if err := whenHealthy(t, func(ctx context.Context) (err error) {
		add, err = admin.MemberAdd(ctx, cfg.InitialAdvertisePeerURLs)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if add.Member.IsLearner || len(add.Members) != 4 {
		t.Fatalf("voter add: %v", add)
	}
	c.cfgs = append(c.cfgs, cfg)
	c.members = append(c.members, nil)
	c.start(3)
	putEventually(t, c.client(3), "via-new-voter")

	// Move m1 to a new peer port.
	moved := c.cfgs[1]
	newPeer := fmt.Sprintf("http://127.0.0.1:%d", freePorts(t, 1)[0])
	if _, err := admin.MemberUpdate(ctx(t), c.members[1].ID(), []string{newPeer}); err != nil {
		t.Fatalf("update: %v", err)
	}
	c.stop(1)
	moved.ListenPeerURLs, moved.InitialAdvertisePeerURLs = []string{newPeer}, []string{newPeer}
	moved.InitialCluster = strings.ReplaceAll(moved.InitialCluster, c.cfgs[1].InitialAdvertisePeerURLs[0], newPeer)
	c.cfgs[1] = moved
	c.start(1)
	c.waitLeader() // the others reach m1 only at its new address
	putEventually(t, c.client(1), "via-moved-member")
	list, err := c.client(1).MemberList(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range list.Members {
		if m.ID == c.members[1].ID() && (len(m.PeerURLs) != 1 || m.PeerURLs[0] != newPeer) {
			t.Fatalf("moved member listed as %v", m)
		}
		if m.IsLearner || m.Name == "" {
			t.Fatalf("member %v", m)
		}
	}
}
