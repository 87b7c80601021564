package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// bgEtcdctl is an etcdctl process running in the background.
type bgEtcdctl struct {
	cmd    *exec.Cmd
	out    lockedBuffer
	errb   lockedBuffer
	exited chan error
}

// startEtcdctl starts etcdctl in the background; it is killed at test end.
func startEtcdctl(t *testing.T, eps []string, args ...string) *bgEtcdctl {
	t.Helper()
	b := &bgEtcdctl{exited: make(chan error, 1)}
	b.cmd = exec.Command(etcdctlBin, append([]string{"--endpoints=" + strings.Join(eps, ",")}, args...)...)
	b.cmd.Env = etcdctlEnv()
	b.cmd.Stdout, b.cmd.Stderr = &b.out, &b.errb
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("etcdctl %s: %v", strings.Join(args, " "), err)
	}
	go func() { b.exited <- b.cmd.Wait() }()
	t.Cleanup(func() {
		_ = b.cmd.Process.Kill()
		<-b.exited
	})
	return b
}

// waitOutput waits until the process's stdout contains want.
func (b *bgEtcdctl) waitOutput(t *testing.T, want string) {
	t.Helper()
	err := waitFor(30*time.Second, 10*time.Millisecond, func() (bool, error) {
		return strings.Contains(b.out.String(), want), nil
	})
	if err != nil {
		t.Fatalf("etcdctl %v: %q never printed: %v\nstdout:\n%s\nstderr:\n%s", b.cmd.Args[1:], want, err, b.out.String(), b.errb.String())
	}
}

// interrupt sends SIGINT (etcdctl then unlocks or resigns) and waits for exit.
func (b *bgEtcdctl) interrupt(t *testing.T) {
	t.Helper()
	_ = b.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-b.exited:
		b.exited <- nil // for the cleanup
	case <-time.After(30 * time.Second):
		t.Fatalf("etcdctl %v did not exit on SIGINT", b.cmd.Args[1:])
	}
}

// `etcdctl lock NAME -- CMD` from several processes at once: the commands
// run one at a time (an atomic mkdir marks the holder), each sees its lock key.
func TestEtcdctlLock(t *testing.T) {
	requireKind(t, "synod")
	cl := startCluster(t, "synod", 3)
	eps := cl.Endpoints()
	dir := t.TempDir()
	held := filepath.Join(dir, "held")
	script := `mkdir "$HELD" || exit 3; echo "key=$ETCD_LOCK_KEY"; sleep 0.2; rmdir "$HELD"`
	var wg sync.WaitGroup
	outs := make([]string, 4)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, etcdctlBin, "--endpoints="+eps[i%len(eps)], "lock", "e2e-lock", "--", "sh", "-c", script)
			cmd.Env = append(etcdctlEnv(), "HELD="+held)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("contender %d: %v\n%s", i, err, out)
			}
			outs[i] = string(out)
		}()
	}
	wg.Wait()
	for i, out := range outs {
		if !strings.HasPrefix(out, "key=e2e-lock/") {
			t.Errorf("contender %d printed %q, want its lock key", i, out)
		}
	}
	if _, err := os.Stat(held); !os.IsNotExist(err) {
		t.Errorf("marker left behind: %v", err)
	}

	// Without a command, etcdctl prints the key and holds the lock until
	// interrupted; a second locker waits for it.
	first := startEtcdctl(t, eps, "lock", "e2e-hold")
	first.waitOutput(t, "e2e-hold/")
	second := startEtcdctl(t, eps, "lock", "e2e-hold")
	select {
	case err := <-second.exited:
		t.Fatalf("second locker exited while the lock was held: %v\n%s", err, second.out.String())
	default:
	}
	if strings.Contains(second.out.String(), "e2e-hold/") {
		t.Fatalf("second locker holds the lock too: %q", second.out.String())
	}
	first.interrupt(t)
	second.waitOutput(t, "e2e-hold/")
}

// `etcdctl elect NAME VALUE` campaigns and `etcdctl elect -l NAME` observes;
// when the leader resigns (SIGINT) the next candidate's value is observed.
func TestEtcdctlElect(t *testing.T) {
	requireKind(t, "synod")
	cl := startCluster(t, "synod", 3)
	eps := cl.Endpoints()
	one := startEtcdctl(t, eps[:1], "elect", "e2e-elect", "v-one")
	one.waitOutput(t, "v-one\n")
	if !strings.HasPrefix(one.out.String(), "e2e-elect/") {
		t.Fatalf("campaign output %q: want the leader key, then the value", one.out.String())
	}
	obs := startEtcdctl(t, eps[1:2], "elect", "-l", "e2e-elect")
	obs.waitOutput(t, "v-one\n")
	two := startEtcdctl(t, eps[2:], "elect", "e2e-elect", "v-two")
	one.interrupt(t)
	two.waitOutput(t, "v-two\n")
	obs.waitOutput(t, "v-two\n")
}
