package e2e

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// diskReserve is server.DiskReserveBytes: the free space under which a
// member refuses writes (docs/maintenance.md#a-full-disk).
const diskReserve = 64 << 20

// TestDiskFull puts one member of a 3-member synod cluster on a 128 MiB
// tmpfs and fills it with another file while clients write 1 MiB values
// through another member. The member must raise NOSPACE before its disk
// is full, keep serving reads, refuse writes with etcd's error, and take
// writes again once the file is gone and the alarm disarmed, without a
// restart. Then the disk is filled to the last byte while the member is
// stopped: it must refuse to start (exit non-zero, saying so) and start
// once there is space, with every acknowledged key and the others' hash.
// synod only: etcd has no free-space check (it dies when its WAL write
// fails, as synod does when a disk is full for real).
func TestDiskFull(t *testing.T) {
	requireKind(t, "synod")
	c := startCluster(t, "synod", 3)
	const disk = 2
	m := c.Members[disk]
	c.StopMember(disk)
	mountTmpfs(t, m.DataDir, "128m")
	c.Restart(disk)
	c.WaitConverged(30 * time.Second)

	far := []string{c.Members[0].Endpoint}
	for i := 0; i < 5; i++ {
		if _, e, code := etcdctl(t, far, "put", fmt.Sprintf("k%d", i), "v"); code != 0 {
			t.Fatalf("put k%d: %s", i, e)
		}
	}
	ballast := filepath.Join(m.DataDir, "ballast")
	fillLeaving(t, ballast, m.DataDir, diskReserve+24<<20)

	// 1 MiB puts through member 0 until the cluster refuses them; member 2's
	// disk would run out within about 88 of them.
	cli := newClient(t, far...)
	value := make([]byte, 1<<20) // random: Pebble compresses tables
	var refused error
	for i := 0; i < 200 && refused == nil; i++ {
		_, _ = rand.Read(value)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := cli.Put(ctx, fmt.Sprintf("big%d", i), string(value))
		cancel()
		if err != nil {
			refused = err
		}
		if !m.Running() {
			t.Fatalf("%s exited after %d puts of 1 MiB (%v): its disk ran out:\n%s", m.Name, i, m.exitStatus(), tail(m.LogText(), 20))
		}
	}
	if !errors.Is(refused, rpctypes.ErrNoSpace) {
		_ = waitFor(30*time.Second, 100*time.Millisecond, func() (bool, error) { return !m.Running(), nil })
		t.Fatalf("puts on a filling disk ended with %v, want %v; %s running: %v (%v):\n%s", refused, rpctypes.ErrNoSpace,
			m.Name, m.Running(), m.exitStatus(), tail(m.LogText(), 12))
	}
	out, _, _ := etcdctl(t, far, "alarm", "list")
	if want := fmt.Sprintf("memberID:%d alarm:NOSPACE", m.ID); !strings.Contains(out, want) {
		t.Fatalf("alarm list = %q, want %q", out, want)
	}
	_, e, code := etcdctl(t, far, "put", "after", "v")
	if want := rpctypes.ErrNoSpace.Error(); code == 0 || !strings.Contains(e, want) {
		t.Fatalf("put while NOSPACE: exit %d, %q; want %q", code, e, want)
	}
	if out, e, code := etcdctl(t, []string{m.Endpoint}, "get", "k4", "--print-value-only"); code != 0 || out != "v\n" {
		t.Fatalf("get k4 from the full member: %q %q (exit %d)", out, e, code)
	}

	// The operator frees space, then disarms: writes go on, no restart.
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	if _, e, code := etcdctl(t, far, "alarm", "disarm"); code != 0 {
		t.Fatalf("alarm disarm: %s", e)
	}
	if _, e, code := etcdctl(t, far, "put", "after", "v2"); code != 0 {
		t.Fatalf("put after disarm: %s", e)
	}
	if out, _, _ := etcdctl(t, []string{m.Endpoint}, "get", "after", "--print-value-only"); out != "v2\n" {
		t.Fatalf("get after from the member: %q", out)
	}
	m.mu.Lock()
	starts := m.starts
	m.mu.Unlock()
	if !m.Running() || starts != 2 {
		t.Fatalf("%s restarted (%d starts) or exited", m.Name, starts)
	}
	c.WaitConverged(30 * time.Second)
	hashes := clusterHashes(t, c)

	// A disk full to the last byte at start: refused, then recovered.
	c.StopMember(disk)
	fillLeaving(t, ballast, m.DataDir, 0)
	if err := m.start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-m.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s started on a full disk and is still running", m.Name)
	}
	var ee *exec.ExitError
	if err := m.exitStatus(); !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("start on a full disk: exit %v, want non-zero", err)
	}
	if log := m.LogText(); !strings.Contains(log, "no space left on device") {
		t.Fatalf("start on a full disk does not say why:\n%s", tail(log, 10))
	}
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	c.Restart(disk)
	c.WaitConverged(30 * time.Second)
	if got := clusterHashes(t, c); got != hashes {
		t.Fatalf("hashkv after the restart:\n%s\nbefore:\n%s", got, hashes)
	}
	for i := 0; i < 5; i++ {
		if out, _, _ := etcdctl(t, []string{m.Endpoint}, "get", fmt.Sprintf("k%d", i), "--print-value-only"); out != "v\n" {
			t.Fatalf("k%d after the restart: %q", i, out)
		}
	}
}

// clusterHashes is every member's `endpoint hashkv` at the current revision.
func clusterHashes(t *testing.T, c *Cluster) string {
	t.Helper()
	out, e, code := etcdctl(t, c.Endpoints(), "endpoint", "hashkv", "-w", "simple")
	if code != 0 {
		t.Fatalf("endpoint hashkv: %s", e)
	}
	return c.normalizeEndpoints(out)
}

// mountTmpfs mounts a tmpfs of the given size on dir, keeping what dir
// held; the test skips (loudly) where mounting is not permitted.
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	saved := dir + ".saved"
	if err := os.Rename(dir, saved); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("SKIPPED: the disk-full test needs a size-limited tmpfs and mounting one is not permitted here (run as root): %v: %s", err, out)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	if out, err := exec.Command("cp", "-a", saved+"/.", dir).CombinedOutput(); err != nil {
		t.Fatalf("copy the data dir onto the tmpfs: %v: %s", err, out)
	}
}

// fillLeaving writes path until the filesystem holding dir has at most
// leave bytes free (or none at all).
func fillLeaving(t *testing.T, path, dir string, leave int64) {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	n := int64(st.Bavail)*st.Bsize - leave
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for leave == 0 || n > 0 {
		chunk := int64(len(buf))
		if leave > 0 {
			chunk = min(chunk, n)
		}
		w, err := f.Write(buf[:chunk])
		n -= int64(w)
		if leave == 0 && errors.Is(err, syscall.ENOSPC) {
			return
		}
		if err != nil {
			t.Fatalf("fill %s: %v", path, err)
		}
	}
}
