package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/synod-db/synod/etcdlog"
	"github.com/synod-db/synod/server"
)

// fsyncChildEnv names the member a child process of
// TestFsyncFailureStopsMember runs: name, data dir, client URL, peer URL
// and initial cluster, separated by spaces.
const fsyncChildEnv = "SYNOD_FSYNC_FAILURE_MEMBER"

// TestFsyncFailureStopsMember runs member m2 of a 3-member cluster in a
// child process whose filesystem fails every WAL sync with EIO once it gets
// SIGUSR1. A write the other two commit reaches m2, whose sync fails: m2
// must exit 1 after one fatal line saying why, with no panic and no retry
// of the sync; every acknowledged write stays; restarted on the same data
// directory with a healthy disk, m2 rejoins and agrees with the others.
// Pebble calls its logger's Fatalf on a failed WAL sync (and its log
// writer's error is sticky), so this is the path server/pebble.go owns.
func TestFsyncFailureStopsMember(t *testing.T) {
	if spec := os.Getenv(fsyncChildEnv); spec != "" {
		runFsyncFailureChild(t, spec)
		return
	}
	c := newCluster(t, 3, nil)
	cli := c.client(0, 1)
	putKeys(t, cli, "before", 20)
	c.stop(2)
	cfg := c.cfgs[2]
	spec := strings.Join([]string{cfg.Name, cfg.DataDir, cfg.ListenClientURLs[0], cfg.ListenPeerURLs[0], cfg.InitialCluster}, " ")
	cmd := exec.Command(os.Args[0], "-test.run=^TestFsyncFailureStopsMember$")
	cmd.Env = append(os.Environ(), fsyncChildEnv+"="+spec)
	stderr := childOutput(t)
	cmd.Stdout, cmd.Stderr = stderr.f, stderr.f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	m2 := c.client(2)
	if err := getKey(m2, "before-19"); err != nil {
		t.Fatalf("the child member does not serve: %v\n%s", err, stderr.String())
	}

	if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	var err error
	acked := []string{"before-0", "before-19"}
	for i := 0; ; i++ {
		if i == 100 {
			t.Fatalf("the member whose fsync failed is still running:\n%s", stderr.String())
		}
		if i < 5 || !strings.Contains(stderr.String(), "ARMED") {
			// m2 may lead when its sync fails: a write in flight then has
			// an unknown outcome (etcd's "request timed out, possibly due
			// to previous leader failure", or no leader yet); only writes
			// acknowledged count.
			key := fmt.Sprintf("after-%d-0", i)
			c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, perr := cli.Put(c, key, "v")
			cancel()
			switch {
			case perr == nil:
				acked = append(acked, key)
			case !errors.Is(perr, rpctypes.ErrTimeoutDueToLeaderFail) && !errors.Is(perr, rpctypes.ErrNoLeader) &&
				!errors.Is(perr, rpctypes.ErrTimeout) && !errors.Is(perr, context.DeadlineExceeded):
				t.Fatalf("put %s: %v", key, perr)
			}
		}
		select {
		case err = <-exited:
		case <-time.After(100 * time.Millisecond):
			continue
		}
		break
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("member exit: %v, want exit status 1\n%s", err, stderr.String())
	}
	out := stderr.String()
	if n := strings.Count(out, "the database cannot continue after a failed disk write or sync"); n != 1 ||
		!strings.Contains(out, `"level":"fatal"`) || !strings.Contains(out, "input/output error") {
		t.Fatalf("want one fatal line naming the failed sync, got %d:\n%s", n, out)
	}
	if strings.Contains(out, "goroutine ") || strings.Contains(out, "panic") {
		t.Fatalf("the member panicked:\n%s", out)
	}
	if strings.Count(out, "SYNC FAILED") != 1 {
		t.Fatalf("want exactly one failed sync (never retried):\n%s", out)
	}

	c.start(2)
	c.waitLeader()
	for _, k := range acked {
		if err := getKey(c.client(2), k); err != nil {
			t.Fatalf("restarted m2: %s: %v", k, err)
		}
	}
	hashes := map[uint32]int{}
	for i := range c.members {
		resp, err := c.client(i).HashKV(ctx(t), c.endpoint(i), 0)
		if err != nil {
			t.Fatal(err)
		}
		hashes[resp.Hash]++
	}
	if len(hashes) != 1 {
		t.Fatalf("members disagree after m2's restart: %v", hashes)
	}
}

// runFsyncFailureChild is the child: member m2 on a filesystem whose WAL
// syncs fail from SIGUSR1 on, logging in etcd's format to stderr.
func runFsyncFailureChild(t *testing.T, spec string) {
	f := strings.Split(spec, " ")
	cfg := server.NewConfig()
	cfg.Name, cfg.DataDir, cfg.InitialCluster = f[0], f[1], f[4]
	cfg.ListenClientURLs, cfg.AdvertiseClientURLs = []string{f[2]}, []string{f[2]}
	cfg.ListenPeerURLs, cfg.InitialAdvertisePeerURLs = []string{f[3]}, []string{f[3]}
	cfg.HeartbeatInterval, cfg.ElectionTimeout = 25*time.Millisecond, 300*time.Millisecond
	armed := new(atomic.Bool)
	cfg.FS = syncFailFS{vfs.Default, armed}
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() { <-usr1; armed.Store(true); fmt.Fprintln(os.Stderr, "ARMED") }()
	log, flush, err := etcdlog.New(os.Stderr, etcdlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer flush()
	m, err := server.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	m.Start()
	select {
	case <-m.Done():
		t.Fatalf("the member stopped with %v instead of exiting", m.Err())
	case <-time.After(60 * time.Second):
		t.Fatal("the member outlived its failed syncs")
	}
}

// syncFailFS fails the syncs of Pebble's WAL files (*.log) with EIO once
// armed, saying so on stderr. (A wrapper of its own rather than errorfs,
// so that Sync, SyncData and SyncTo all fail.)
type syncFailFS struct {
	vfs.FS
	armed *atomic.Bool
}

func (fs syncFailFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, c)
	return fs.wrap(name, f, err)
}

func (fs syncFailFS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, c)
	return fs.wrap(newname, f, err)
}

func (fs syncFailFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name, c, opts...)
	return fs.wrap(name, f, err)
}

func (fs syncFailFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return syncFailFile{f, fs.armed}, nil
}

type syncFailFile struct {
	vfs.File
	armed *atomic.Bool
}

func (f syncFailFile) fail() error {
	if !f.armed.Load() {
		return nil
	}
	fmt.Fprintln(os.Stderr, "SYNC FAILED (injected)")
	return &os.PathError{Op: "fdatasync", Path: "wal", Err: syscall.EIO}
}

func (f syncFailFile) Sync() error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f syncFailFile) SyncData() error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.File.SyncData()
}

func (f syncFailFile) SyncTo(length int64) (bool, error) {
	if err := f.fail(); err != nil {
		return false, err
	}
	return f.File.SyncTo(length)
}

// outputFile is a file a child process writes its output to, read back
// whole by String.
type outputFile struct{ f *os.File }

// childOutput creates an outputFile removed at the end of the test.
func childOutput(t *testing.T) outputFile {
	f, err := os.CreateTemp(t.TempDir(), "child-*.log")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return outputFile{f}
}

func (o outputFile) String() string {
	b, _ := os.ReadFile(o.f.Name())
	return string(b)
}

// putKeys writes prefix-0 .. prefix-(n-1), each acknowledged.
func putKeys(t *testing.T, cli *clientv3.Client, prefix string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := cli.Put(ctx(t), fmt.Sprintf("%s-%d", prefix, i), "v"); err != nil {
			t.Fatalf("put %s-%d: %v", prefix, i, err)
		}
	}
}

// getKey waits (up to 20 s) until cli reads key linearizably.
func getKey(cli *clientv3.Client, key string) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		resp, err := cli.Get(c, key)
		cancel()
		if err == nil && len(resp.Kvs) == 1 {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("%s not found", key)
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
