package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// lostLogMessage is what a member whose raft log lost applied entries says
// as it refuses to start (raftnode.ErrLogBehindState).
const lostLogMessage = "the raft log has lost entries this member acknowledged"

// TestRaftLogLostEntriesRefused damages the middle of the newest WAL file
// of a killed member's raft log database. Pebble reads that as a torn write
// and drops every record after the damage, synced ones included
// (docs/security.md, "Known limits"), so the log now ends before entries
// the member acknowledged. Restarted, the member must exit saying so and
// what to do, not with raft's panic; the other two serve every acknowledged
// write; removed, emptied and added back as the message says, the member
// catches up. Two ways to find out: the leader, with a raft snapshot (and
// so a synced state) every 10 entries, finds at start that its state
// applied past its log; a follower, whose unsynced applies the kill lost
// with its log's, is found out when the leader commits past its log.
func TestRaftLogLostEntriesRefused(t *testing.T) {
	t.Run("state past the log", func(t *testing.T) {
		cl := startCluster(t, "synod", 3, "--snapshot-count=10")
		lostLogRefused(t, cl, cl.WaitLeader(startTimeout))
	})
	t.Run("leader commits past the log", func(t *testing.T) {
		cl := startCluster(t, "synod", 3)
		victim := (cl.WaitLeader(startTimeout) + 1) % 3
		lostLogRefused(t, cl, victim)
	})
}

// lostLogRefused writes, kills member i, damages its raft log's newest WAL
// and checks the refusal, the others' service and the recovery.
func lostLogRefused(t *testing.T, cl *Cluster, i int) {
	cli := newClient(t, cl.Endpoints()...)
	const keys = 40
	values := make([]string, keys)
	for i := range values {
		values[i] = fmt.Sprintf("acked-%03d-%s", i, randHex(8))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := cli.Put(ctx, fmt.Sprintf("lost/%03d", i), values[i])
		cancel()
		if err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	victim := cl.Members[i]
	if err := waitFor(20*time.Second, 50*time.Millisecond, func() (bool, error) {
		return localValue(t, victim, fmt.Sprintf("lost/%03d", keys-1)) == values[keys-1], nil
	}); err != nil {
		t.Fatalf("%s never applied the last write: %v", victim.Name, err)
	}
	cl.Kill9(i) // the raft log's records are in its WAL, as a crash leaves them
	damageNewestRaftLogWAL(t, victim, values[keys/2])

	if err := victim.start(); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(startTimeout, 100*time.Millisecond, func() (bool, error) { return !victim.Running(), nil }); err != nil {
		// A follower is found out by the leader that counted its entries:
		// a new leader would send them again.
		t.Fatalf("%s runs over a raft log that lost acknowledged entries (leader now: %s)",
			victim.Name, cl.Members[cl.WaitLeader(startTimeout)].Name)
	}
	lines := victim.logLinesSinceStart()
	last := lines[len(lines)-1]
	for _, want := range []string{"synod serve: ", lostLogMessage, filepath.Join(victim.DataDir, "raftlog"),
		fmt.Sprintf("etcdctl member remove %x", victim.ID), "--initial-cluster-state existing"} {
		if !strings.Contains(last, want) || victim.exitStatus() == nil {
			t.Fatalf("%s exited (%v) with last line %q; want a non-zero exit saying %q", victim.Name, victim.exitStatus(), last, want)
		}
	}
	if text := strings.Join(lines, "\n"); strings.Contains(text, "panic") || strings.Contains(text, "goroutine ") {
		t.Fatalf("%s panicked:\n%s", victim.Name, tail(text, 40))
	}
	t.Logf("%s refused to go on: %s", victim.Name, last)

	for _, m := range cl.Members {
		if m != victim {
			checkValues(t, m, values)
		}
	}
	readdMember(t, cl, i)
	checkValues(t, victim, values)
}

// damageNewestRaftLogWAL flips one bit in the middle of value where it is
// stored in the newest WAL file of m's raft log database. The value's
// entry and those after it are then dropped when the log is opened.
func damageNewestRaftLogWAL(t *testing.T, m *Member, value string) {
	t.Helper()
	wals, err := filepath.Glob(filepath.Join(m.DataDir, "raftlog", "*.log"))
	if err != nil || len(wals) == 0 {
		t.Fatalf("no WAL file in %s's raft log database (%v)", m.Name, err)
	}
	newest := slices.Max(wals) // zero-padded file numbers
	for _, s := range findValue(t, filepath.Dir(newest), []byte(value)) {
		if s.path == newest {
			st, err := os.Stat(newest)
			if err != nil {
				t.Fatal(err)
			}
			flipBitAt(t, s.path, s.off+len(value)/2)
			t.Logf("flipped a bit at offset %d of %s (%d bytes)", s.off+len(value)/2, s.path, st.Size())
			return
		}
	}
	t.Fatalf("%q is not in %s", value, newest)
}

// checkValues waits until m serves every key lost/NNN with its value from
// its own state.
func checkValues(t *testing.T, m *Member, values []string) {
	t.Helper()
	err := waitFor(30*time.Second, 100*time.Millisecond, func() (bool, error) {
		for i, v := range values {
			k := fmt.Sprintf("lost/%03d", i)
			if got := localValue(t, m, k); got != v {
				return false, fmt.Errorf("%s = %q", k, got)
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("%s does not serve every acknowledged write: %v", m.Name, err)
	}
}

// readdMember does what the refusal says: member i is removed through the
// others, its data directory emptied, and it is added back under its name
// and peer URL and started with --initial-cluster-state existing.
func readdMember(t *testing.T, cl *Cluster, i int) {
	t.Helper()
	m := cl.Members[i]
	var eps []string
	for _, o := range cl.Members {
		if o != m {
			eps = append(eps, o.Endpoint)
		}
	}
	r := &memberRun{t: t, cl: cl, eps: eps, ids: map[uint64]string{}}
	if _, e, code := r.retry("unhealthy cluster", "member", "remove", fmt.Sprintf("%x", m.ID)); code != 0 {
		t.Fatalf("member remove %s: %s", m.Name, e)
	}
	if err := os.RemoveAll(m.DataDir); err != nil {
		t.Fatal(err)
	}
	stdout, e, code := r.retry("unhealthy cluster", "member", "add", m.Name, "--peer-urls="+m.PeerURL)
	env := parseEnv(stdout)
	if code != 0 || env["ETCD_INITIAL_CLUSTER_STATE"] != "existing" {
		t.Fatalf("member add %s: %s%s", m.Name, stdout, e)
	}
	for k, a := range m.Args {
		switch {
		case strings.HasPrefix(a, "--initial-cluster="):
			m.Args[k] = "--initial-cluster=" + env["ETCD_INITIAL_CLUSTER"]
		case strings.HasPrefix(a, "--initial-cluster-state="):
			m.Args[k] = "--initial-cluster-state=existing"
		}
	}
	if err := m.start(); err != nil {
		t.Fatal(err)
	}
	if err := cl.waitMemberReady(m, startTimeout); err != nil {
		t.Fatal(err)
	}
}
