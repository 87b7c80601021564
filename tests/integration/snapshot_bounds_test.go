package integration

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/synod-db/synod/etcdsnap"
)

// stagedFiles lists the snapshot files a member is staging in its data
// directory.
func stagedFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "backup-*.tmp"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestSnapshotStagingBounds: Member.Snapshot stages an etcd-format database
// (readable with its sha256 appended) in the data directory and removes it
// on Close; at most two are staged at once (a third caller waits, and gives
// up with its context); a context that has ended stops the staging and
// leaves no file.
func TestSnapshotStagingBounds(t *testing.T) {
	c := newCluster(t, 1, nil)
	c.waitLeader()
	cli := c.client()
	for i := 0; i < 20; i++ {
		if _, err := cli.Put(ctx(t), fmt.Sprintf("k%d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	m, dir := c.members[0], c.cfgs[0].DataDir
	var open []io.Closer
	for i := 0; i < 2; i++ {
		body, n, err := m.Snapshot(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, body)
		if i == 0 {
			checkStagedDB(t, body, n)
		}
	}
	if got := len(stagedFiles(t, dir)); got != 2 {
		t.Errorf("%d files staged, want 2", got)
	}
	short, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, _, err := m.Snapshot(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a third snapshot while two are staged: %v, want it to wait and give up", err)
	}
	for _, b := range open {
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if got := stagedFiles(t, dir); len(got) != 0 {
		t.Errorf("files left after Close: %v", got)
	}
	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	if _, _, err := m.Snapshot(done); err == nil {
		t.Errorf("a snapshot with an ended context succeeded")
	}
	if got := stagedFiles(t, dir); len(got) != 0 {
		t.Errorf("files left by a cancelled snapshot: %v", got)
	}
}

// checkStagedDB reads the staged file as etcd would: n bytes of bbolt
// database, then (as the stream adds) its sha256.
func checkStagedDB(t *testing.T, body io.Reader, n int64) {
	t.Helper()
	data, err := io.ReadAll(body)
	if err != nil || int64(len(data)) != n {
		t.Fatalf("read %d of %d bytes: %v", len(data), n, err)
	}
	sum := sha256.Sum256(data)
	p := filepath.Join(t.TempDir(), "snap.db")
	if err := os.WriteFile(p, append(data, sum[:]...), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := etcdsnap.Open(p, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	keys := 0
	if err := s.ForEachRevision(func(etcdsnap.Revision, *mvccpb.KeyValue) error { keys++; return nil }); err != nil || keys != 20 {
		t.Errorf("%d revisions in the staged file (%v), want 20", keys, err)
	}
}
