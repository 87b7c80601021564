package e2e

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/synod-db/synod/internal/tamper"
)

// TestCorruptionChecksEtcdctl gives one member of a real 3-process cluster a
// value that differs from its peers' under a valid checksum, then checks,
// with the real etcdctl: restarted with
// --feature-gates=InitialCorruptCheck=true the member refuses to start and
// says why; restarted without it, the leader's --corrupt-check-time check
// raises CORRUPT for that member (alarm list), every write fails with etcd's
// "etcdserver: corrupt cluster" while reads go on, and alarm disarm lets
// writes through again.
func TestCorruptionChecksEtcdctl(t *testing.T) {
	cl := startCluster(t, "synod", 3, "--corrupt-check-time=300ms")
	eps := cl.Endpoints()
	for _, args := range [][]string{{"put", "m-victim", "good-value"}, {"put", "other", "v"}} {
		if out, errOut, code := etcdctl(t, eps, args...); code != 0 {
			t.Fatalf("etcdctl %v: %s %s", args, out, errOut)
		}
	}
	cl.WaitConverged(30 * time.Second)
	victim := cl.Members[2]
	if err := cl.waitMemberReady(victim, startTimeout); err != nil { // learns its ID
		t.Fatal(err)
	}
	cl.StopMember(2)
	if err := tamper.RewriteValue(filepath.Join(victim.DataDir, "db"), "m-victim", "good-value", "evil-value"); err != nil {
		t.Fatal(err)
	}

	plain := slices.Clone(victim.Args)
	victim.Args = append(victim.Args, "--feature-gates=InitialCorruptCheck=true")
	if err := victim.start(); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(startTimeout, 100*time.Millisecond, func() (bool, error) { return !victim.Running(), nil }); err != nil {
		t.Fatalf("the tampered member still runs with the initial corruption check: %v", err)
	}
	if last := lastLine(victim.LogText()); victim.exitStatus() == nil || !strings.Contains(last, "found data inconsistency with peers") {
		t.Fatalf("initial check: exit %v, last line %q; want a non-zero exit saying why", victim.exitStatus(), last)
	}

	victim.Args = plain
	cl.Restart(2)
	want := fmt.Sprintf("memberID:%d alarm:CORRUPT", victim.ID)
	err := waitFor(30*time.Second, 200*time.Millisecond, func() (bool, error) {
		out, errOut, code := etcdctl(t, eps[:1], "alarm", "list")
		if code != 0 {
			return false, fmt.Errorf("alarm list: %s", errOut)
		}
		return strings.TrimSpace(out) == want, fmt.Errorf("alarm list printed %q, want %q", out, want)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"put", "other", "w"}, {"del", "other"}, {"lease", "grant", "60"}, {"compaction", "2"}} {
		for i := range cl.Members {
			_, errOut, code := etcdctl(t, eps[i:i+1], args...)
			if last := lastLine(errOut); code == 0 || !strings.HasPrefix(last, "Error: ") || !strings.Contains(last, "(etcdserver: corrupt cluster)") && last != "Error: etcdserver: corrupt cluster" {
				t.Errorf("etcdctl %v on member %d while CORRUPT: exit %d, stderr %q", args, i, code, errOut)
			}
		}
	}
	if out, errOut, code := etcdctl(t, eps[:1], "get", "m-victim", "--print-value-only"); code != 0 || strings.TrimSpace(out) != "good-value" {
		t.Errorf("get while CORRUPT: %q %q %d", out, errOut, code)
	}
	// Recovery begins by taking the divergent member out; the check would
	// raise the alarm again while it answers. A check already under way
	// may still raise it once, so disarm until a write goes through.
	cl.StopMember(2)
	err = waitFor(30*time.Second, 200*time.Millisecond, func() (bool, error) {
		out, errOut, code := etcdctl(t, eps[:2], "alarm", "disarm")
		if code != 0 || strings.TrimSpace(out) != want {
			return false, fmt.Errorf("alarm disarm: %q %q %d", out, errOut, code)
		}
		_, errOut, code = etcdctl(t, eps[:2], "put", "other", "after")
		return code == 0, fmt.Errorf("put after disarm: %s", errOut)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
