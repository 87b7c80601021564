package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// runSynod runs the synod binary and returns its output and exit code.
func runSynod(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, synodBin, args...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("synod %s: %v", strings.Join(args, " "), err)
	}
	return o.String(), e.String(), code
}

// TestSnapshotSaveRestore saves a snapshot of a 3-member cluster with the
// real `etcdctl snapshot save`, restores it with `synod snapshot restore`
// into a new single-member cluster, serves it with `synod serve` and checks
// the data and revisions are the same while the cluster is new.
func TestSnapshotSaveRestore(t *testing.T) {
	cl := startCluster(t, "synod", 3)
	src := newClient(t, cl.Endpoints()...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := 0; i < 40; i++ {
		if _, err := src.Put(ctx, fmt.Sprintf("r/%02d", i%15), fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := src.Delete(ctx, "r/07"); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Compact(ctx, 12); err != nil {
		t.Fatal(err)
	}
	cl.WaitConverged(30 * time.Second)
	want, err := cl.Members[0].client(t).Get(ctx, "r/", clientv3.WithPrefix(), clientv3.WithSerializable())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "backup.db")
	if out, errOut, code := etcdctl(t, []string{cl.Members[0].Endpoint}, "snapshot", "save", file); code != 0 {
		t.Fatalf("snapshot save: exit %d\n%s%s", code, out, errOut)
	}

	ports, err := freePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	m := &Member{
		Name:      "r0",
		DataDir:   filepath.Join(dir, "r0.data"),
		ClientURL: fmt.Sprintf("http://127.0.0.1:%d", ports[0]),
		PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[1]),
		Endpoint:  fmt.Sprintf("127.0.0.1:%d", ports[0]),
		LogPath:   filepath.Join(dir, "r0.log"),
		Bin:       synodBin,
	}
	cluster := []string{"--name=r0", "--initial-cluster=r0=" + m.PeerURL, "--initial-cluster-token=restored",
		"--initial-advertise-peer-urls=" + m.PeerURL}

	// A flipped bit: a clear error and no data directory.
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/3] ^= 0x01
	bad := filepath.Join(dir, "bad.db")
	if err := os.WriteFile(bad, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := runSynod(t, append([]string{"snapshot", "restore", bad, "--data-dir=" + m.DataDir}, cluster...)...)
	if code != 1 || !strings.Contains(errOut, "snapshot file integrity check failed") || !strings.Contains(errOut, "sha256") {
		t.Errorf("restore of a corrupt file: exit %d, stderr %q", code, errOut)
	}
	if _, err := os.Stat(m.DataDir); !os.IsNotExist(err) {
		t.Fatalf("a failed restore left %s: %v", m.DataDir, err)
	}

	out, errOut, code := runSynod(t, append([]string{"snapshot", "restore", file, "--data-dir=" + m.DataDir}, cluster...)...)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("revision %d, compacted at 12", want.Header.Revision)) {
		t.Fatalf("restore: exit %d\n%s%s", code, out, errOut)
	}
	m.Args = append([]string{"serve", "--data-dir=" + m.DataDir, "--listen-client-urls=" + m.ClientURL,
		"--advertise-client-urls=" + m.ClientURL, "--listen-peer-urls=" + m.PeerURL}, cluster...)
	rc := &Cluster{t: t, Kind: "synod", Members: []*Member{m}}
	t.Cleanup(func() {
		if t.Failed() {
			rc.dumpLogs()
		}
		rc.stopAll()
	})
	if err := m.start(); err != nil {
		t.Fatal(err)
	}
	if err := rc.waitMemberReady(m, startTimeout); err != nil {
		t.Fatal(err)
	}
	got, err := m.client(t).Get(ctx, "r/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if got.Header.Revision != want.Header.Revision || len(got.Kvs) != len(want.Kvs) || got.Header.ClusterId == want.Header.ClusterId {
		t.Fatalf("restored member: revision %d, %d keys, cluster %x; want revision %d, %d keys, a new cluster (not %x)",
			got.Header.Revision, len(got.Kvs), got.Header.ClusterId, want.Header.Revision, len(want.Kvs), want.Header.ClusterId)
	}
	for i := range want.Kvs {
		if got.Kvs[i].String() != want.Kvs[i].String() {
			t.Errorf("restored %v, want %v", got.Kvs[i], want.Kvs[i])
		}
	}
	stdout, _, code := etcdctl(t, []string{m.Endpoint}, "member", "list")
	if code != 0 || len(lines(stdout)) != 1 || !strings.Contains(stdout, ", started, r0, "+m.PeerURL+", "+m.ClientURL+", false") {
		t.Errorf("member list of the restored cluster: %q", stdout)
	}
	// The same hash as the source for the same history.
	srcHash, _, _ := etcdctl(t, []string{cl.Members[0].Endpoint}, "endpoint", "hashkv", fmt.Sprintf("--rev=%d", want.Header.Revision))
	newHash, _, _ := etcdctl(t, []string{m.Endpoint}, "endpoint", "hashkv", fmt.Sprintf("--rev=%d", want.Header.Revision))
	if h1, h2 := strings.SplitN(srcHash, ", ", 2), strings.SplitN(newHash, ", ", 2); len(h1) != 2 || len(h2) != 2 || h1[1] != h2[1] {
		t.Errorf("hashkv of source %q and restored %q differ", srcHash, newHash)
	}
}
