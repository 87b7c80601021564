package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestForceNewCluster is the recovery procedure of docs/membership.md: a
// 3-member cluster loses two members for good (kill -9, data directories
// deleted); the survivor, restarted with --force-new-cluster, serves every
// acknowledged key as a one-member cluster and accepts writes; a new member
// is added with `etcdctl member add` and started with
// --initial-cluster-state existing, and catches up; the survivor restarted
// without the flag keeps the new membership. Run against etcd too.
func TestForceNewCluster(t *testing.T) {
	for _, kind := range kinds() {
		t.Run(kind, func(t *testing.T) {
			cl := startCluster(t, kind, 3)
			const keys = 40
			cli := newClient(t, cl.Endpoints()...)
			for i := range keys {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := cli.Put(ctx, fmt.Sprintf("fnc/%03d", i), fmt.Sprintf("v%d", i))
				cancel()
				if err != nil {
					t.Fatalf("put %d: %v", i, err)
				}
			}
			// The survivor must hold every acknowledged write before the
			// others are lost (a write needs only a majority), and know it
			// is committed: a member stores the commit index only with the
			// next entries it appends, and --force-new-cluster discards the
			// entries after the stored one (and after the applied index,
			// which a kill -9 may also set back), in etcd as in synod. So
			// one more write must reach the survivor after the last key.
			survivor := cl.Members[0]
			for _, k := range []string{fmt.Sprintf("fnc/%03d", keys-1), "fnc/flush"} {
				if k == "fnc/flush" {
					if _, e, code := etcdctl(t, cl.Endpoints(), "put", k, "1"); code != 0 {
						t.Fatalf("%s: put %s: %s", kind, k, e)
					}
				}
				if err := waitFor(20*time.Second, 50*time.Millisecond, func() (bool, error) {
					return localValue(t, survivor, k) != "", nil
				}); err != nil {
					t.Fatalf("%s: the survivor never applied %s: %v", kind, k, err)
				}
			}
			for _, i := range []int{1, 2} {
				cl.Kill9(i)
				if err := os.RemoveAll(cl.Members[i].DataDir); err != nil {
					t.Fatal(err)
				}
			}
			cl.Kill9(0)
			plain := survivor.Args
			survivor.Args = append(append([]string(nil), plain...), "--force-new-cluster")
			cl.Restart(0)

			eps := []string{survivor.Endpoint}
			checkKeys(t, survivor, keys)
			if out := memberNames(t, eps); out != "m0" {
				t.Fatalf("%s: members after --force-new-cluster: %q, want m0 alone", kind, out)
			}
			if _, e, code := etcdctl(t, eps, "put", "fnc/after", "1"); code != 0 {
				t.Fatalf("%s: put on the forced cluster: %s", kind, e)
			}

			r := &memberRun{t: t, cl: cl, eps: eps, ids: map[uint64]string{}}
			m3 := r.newMember()
			stdout, _, _ := r.retry("unhealthy cluster", "member", "add", "m3", "--peer-urls="+m3.PeerURL)
			env := parseEnv(stdout)
			if env["ETCD_INITIAL_CLUSTER_STATE"] != "existing" {
				t.Fatalf("%s: member add printed %q", kind, stdout)
			}
			m3.Args = append(m3.Args, "--initial-cluster="+env["ETCD_INITIAL_CLUSTER"],
				"--initial-advertise-peer-urls="+env["ETCD_INITIAL_ADVERTISE_PEER_URLS"],
				"--initial-cluster-state=existing")
			cl.Members = append(cl.Members, m3)
			if err := m3.start(); err != nil {
				t.Fatal(err)
			}
			if err := cl.waitMemberReady(m3, startTimeout); err != nil {
				t.Fatal(err)
			}
			checkKeys(t, m3, keys)

			// The flag is for one start: without it the survivor keeps the
			// two-member cluster it now belongs to.
			cl.StopMember(0)
			survivor.Args = plain
			cl.Restart(0)
			if out := memberNames(t, eps); out != "m0,m3" {
				t.Fatalf("%s: members after a plain restart: %q, want m0,m3", kind, out)
			}
			if _, e, code := etcdctl(t, []string{m3.Endpoint}, "put", "fnc/grown", "1"); code != 0 {
				t.Fatalf("%s: put on the grown cluster: %s", kind, e)
			}
		})
	}
}

// localValue is key's value in m's own state (a serializable read), or "".
func localValue(t *testing.T, m *Member, key string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := m.client(t).Get(ctx, key, clientv3.WithSerializable())
	if err != nil || len(resp.Kvs) == 0 {
		return ""
	}
	return string(resp.Kvs[0].Value)
}

// checkKeys waits until m serves every key the test wrote, from its own
// state, with its value.
func checkKeys(t *testing.T, m *Member, keys int) {
	t.Helper()
	err := waitFor(30*time.Second, 100*time.Millisecond, func() (bool, error) {
		for i := range keys {
			k := fmt.Sprintf("fnc/%03d", i)
			if got := localValue(t, m, k); got != fmt.Sprintf("v%d", i) {
				return false, fmt.Errorf("%s = %q", k, got)
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("%s does not serve every acknowledged key: %v", m.Name, err)
	}
}

// memberNames lists the members' names, sorted, as etcdctl prints them.
func memberNames(t *testing.T, eps []string) string {
	t.Helper()
	stdout, stderr, code := etcdctl(t, eps, "member", "list", "-w", "simple")
	if code != 0 {
		t.Fatalf("member list: %s", stderr)
	}
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		if f := strings.Split(l, ", "); len(f) > 2 {
			names = append(names, f[2])
		}
	}
	slices.Sort(names)
	return strings.Join(names, ",")
}
