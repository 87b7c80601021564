package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSnapshotCatchUpKilled: a member catching up by snapshot is killed
// with SIGKILL as soon as the stream starts arriving (so during its
// receipt, or, on a fast machine, after it: during or after the install),
// then restarted: it catches up, holds every key, and nothing of the
// interrupted receipt is left in its data directory (mvcc/doc.go,
// "Restore").
func TestSnapshotCatchUpKilled(t *testing.T) {
	cl := startCluster(t, "synod", 3, "--snapshot-count=100")
	leader := cl.WaitLeader(30 * time.Second)
	lag := (leader + 1) % len(cl.Members)
	cl.StopMember(lag)

	// About 24 MB of values: a stream that takes a while to receive.
	const prefix, n = "killed/", 3000
	val := strings.Repeat("0123456789abcdef", 512)
	want := map[string]string{}
	for i := 0; i < n; i++ {
		want[fmt.Sprintf("%s%05d", prefix, i)] = fmt.Sprintf("%d-%s", i, val)
	}
	putAll(t, newClient(t, cl.RunningEndpoints()...), want)

	m := cl.Members[lag]
	if err := m.start(); err != nil {
		t.Fatal(err)
	}
	err := waitFor(60*time.Second, 2*time.Millisecond, func() (bool, error) {
		return strings.Contains(m.LogText()[strings.LastIndex(m.LogText(), "=== e2e: start #"):], "receiving snapshot"),
			fmt.Errorf("%s logged no %q", m.Name, "receiving snapshot")
	})
	if err != nil {
		t.Fatal(err)
	}
	cl.Kill9(lag)
	phase := "while receiving"
	for _, l := range m.logLinesSinceStart() {
		switch {
		case strings.Contains(l, "installed snapshot"):
			phase = "after installing"
		case strings.Contains(l, "received snapshot") && phase == "while receiving":
			phase = "after receiving"
		}
	}
	var left []string
	for _, d := range []string{"snap", "db.ingest"} {
		entries, _ := os.ReadDir(filepath.Join(m.DataDir, d))
		for _, e := range entries {
			left = append(left, d+"/"+e.Name())
		}
	}
	t.Logf("%s killed %s the snapshot, leaving %v", m.Name, phase, left)

	cl.Restart(lag)
	if err := waitVisible(t, m, fmt.Sprintf("%s%05d", prefix, n-1)); err != nil {
		t.Fatalf("%s did not catch up after the kill: %v", m.Name, err)
	}
	if kvs, _, _ := memberKVs(t, cl, lag, prefix); len(kvs) != n {
		t.Errorf("%s holds %d keys after catching up, want %d", m.Name, len(kvs), n)
	}
	noReceivedSnapshotLeft(t, m.DataDir)
	checkAllMembersHave(t, cl, prefix, want)
}
