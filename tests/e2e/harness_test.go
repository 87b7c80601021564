// Package e2e holds process-level end-to-end tests: real synod (and, as the
// reference, real etcd) processes on loopback ports, driven by the real
// etcdctl binary and by clientv3.
//
// Run:
//
//	go test ./tests/e2e/                       # synod + etcd (etcd when its binary is found)
//	go test ./tests/e2e/ -run TestEtcdctl -update   # rewrite testdata/*.golden from real etcd
//
// The etcd binary is $SYNOD_ETCD_BIN or /root/.cache/synod-anchors/bin/etcd
// (built by /work/shared/tools/etcd-anchors.sh). A prebuilt synod can be
// given as $SYNOD_BIN; otherwise TestMain builds ./cmd/synod.
package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/synod-db/synod/internal/testcache"
)

var (
	update    = flag.Bool("update", false, "rewrite testdata/*.golden from a real etcd cluster (requires the etcd binary)")
	crashEtcd = flag.Bool("crash-etcd", false, "also run the crash-safety tests against real etcd (validates the tests themselves)")
)

const defaultEtcdBin = "/root/.cache/synod-anchors/bin/etcd"

// Set once by TestMain.
var (
	moduleRoot string
	etcdctlBin string

	synodBin      string // path of the synod binary, "" when unavailable
	synodSkip     string // why synod tests are skipped (cmd/synod does not exist)
	synodBuildErr string // go build ./cmd/synod failed: synod tests fail with this

	etcdBin  string // path of the real etcd binary, "" when unavailable
	etcdSkip string // why etcd tests are skipped

	etcdutlBin  string // path of the real etcdutl binary, "" when unavailable
	etcdutlSkip string // why tests needing etcdutl are skipped
)

// e2eTimeout is the whole package's time limit when `go test` leaves the
// default of 10 minutes: the package runs real clusters one after another
// and takes 9-10 minutes on two cores, where go test's default would end it
// in the middle of a test. An explicit -timeout other than 10m is kept.
const e2eTimeout = 25 * time.Minute

func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.timeout"); f != nil && f.Value.String() == (10*time.Minute).String() {
		_ = f.Value.Set(e2eTimeout.String())
	}
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	var err error
	moduleRoot, err = findModuleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	binDir, err := os.MkdirTemp("", "synod-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(binDir)

	// etcdctl from the module's own dependency graph: identical to `go tool etcdctl`.
	etcdctlBin = filepath.Join(binDir, "etcdctl")
	if out, err := goBuild(etcdctlBin, "go.etcd.io/etcd/etcdctl/v3"); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building etcdctl: %v\n%s\n", err, out)
		return 1
	}

	switch p := os.Getenv("SYNOD_BIN"); {
	case p != "":
		if !isExecutable(p) {
			fmt.Fprintf(os.Stderr, "e2e: SYNOD_BIN=%s is not an executable file\n", p)
			return 1
		}
		synodBin = p
	case !dirExists(filepath.Join(moduleRoot, "cmd", "synod")):
		synodSkip = "./cmd/synod does not exist yet (set SYNOD_BIN to use a prebuilt binary)"
	default:
		bin := filepath.Join(binDir, "synod")
		if out, err := goBuild(bin, "./cmd/synod"); err != nil {
			synodBuildErr = fmt.Sprintf("go build ./cmd/synod: %v\n%s", err, out)
		} else {
			synodBin = bin
		}
	}

	etcdBin = os.Getenv("SYNOD_ETCD_BIN")
	if etcdBin == "" {
		etcdBin = defaultEtcdBin
	}
	if !isExecutable(etcdBin) {
		etcdSkip = fmt.Sprintf("real etcd binary not found at %s (set $SYNOD_ETCD_BIN or run /work/shared/tools/etcd-anchors.sh)", etcdBin)
		etcdBin = ""
	}
	etcdutlBin = os.Getenv("SYNOD_ETCDUTL_BIN")
	if etcdutlBin == "" {
		etcdutlBin = filepath.Join(filepath.Dir(defaultEtcdBin), "etcdutl")
	}
	if !isExecutable(etcdutlBin) {
		etcdutlSkip = fmt.Sprintf("real etcdutl binary not found at %s (set $SYNOD_ETCDUTL_BIN or run /work/shared/tools/etcd-anchors.sh)", etcdutlBin)
		etcdutlBin = ""
	}
	return m.Run()
}

func goBuild(out, pkg string) ([]byte, error) {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = moduleRoot
	return cmd.CombinedOutput()
}

func findModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// requireKind skips (binary unavailable) or fails (synod does not build) the test.
var (
	trackSources    sync.Once
	trackSourcesErr error
)

func requireKind(t testing.TB, kind string) {
	t.Helper()
	switch kind {
	case "synod":
		// synod is built from the module's sources in a subprocess: make
		// the cached result depend on them. (Only files opened once the
		// tests run count, so this is not in TestMain.)
		trackSources.Do(func() { trackSourcesErr = testcache.DependOnModuleSources(moduleRoot) })
		if trackSourcesErr != nil {
			t.Fatal(trackSourcesErr)
		}
		if synodBuildErr != "" {
			t.Fatal(synodBuildErr)
		}
		if synodBin == "" {
			t.Skip("synod: " + synodSkip)
		}
	case "etcd":
		if etcdBin == "" {
			t.Skip("etcd: " + etcdSkip)
		}
	default:
		t.Fatalf("unknown cluster kind %q", kind)
	}
}

// kinds returns the cluster kinds to run: the reference first, so that with
// -update the goldens are rewritten before synod is compared against them.
func kinds() []string { return []string{"etcd", "synod"} }

// etcdctlEnv is the environment for etcdctl: ours minus every ETCDCTL_* variable
// (in particular ETCDCTL_API is unset).
func etcdctlEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCDCTL_") {
			env = append(env, kv)
		}
	}
	return env
}

// etcdctl runs the real etcdctl against endpoints and returns its stdout,
// stderr and exit code.
func etcdctl(t testing.TB, endpoints []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return etcdctlStdin(t, endpoints, "", args...)
}

// etcdctlStdin is etcdctl with the given standard input.
func etcdctlStdin(t testing.TB, endpoints []string, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	full := append([]string{"--endpoints=" + strings.Join(endpoints, ",")}, args...)
	cmd := exec.CommandContext(ctx, etcdctlBin, full...)
	cmd.Env = etcdctlEnv()
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("etcdctl %s: did not finish within 60s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), o.String(), e.String())
	}
	code = 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("etcdctl %s: %v", strings.Join(args, " "), err)
		}
		code = ee.ExitCode()
	}
	return o.String(), e.String(), code
}

// newClient returns a clientv3 client (silent logger) closed at test end.
func newClient(t testing.TB, endpoints ...string) *clientv3.Client {
	t.Helper()
	cli, err := dialClient(endpoints...)
	if err != nil {
		t.Fatalf("clientv3.New(%v): %v", endpoints, err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// dialClient returns a clientv3 client with a silent logger. clientv3.New does
// not block on connecting, so this only fails on bad configuration.
func dialClient(endpoints ...string) (*clientv3.Client, error) {
	return dialClientTLS(nil, endpoints...)
}

// dialClientTLS is dialClient over TLS with tc (plaintext when tc is nil).
func dialClientTLS(tc *tls.Config, endpoints ...string) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		TLS:                  tc,
		Endpoints:            endpoints,
		DialTimeout:          5 * time.Second,
		DialKeepAliveTime:    5 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
		Logger:               zap.NewNop(),
	})
}

// permanent marks a condition's error as final: waitFor returns it at
// once instead of waiting out its timeout (a process that exited will not
// become ready).
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// waitFor polls cond every interval until it returns true or the timeout
// passes; it then returns an error wrapping the last error cond reported.
// A permanent error from cond ends the wait at once.
func waitFor(timeout, interval time.Duration, cond func() (bool, error)) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		var final permanent
		if errors.As(err, &final) {
			return final.err
		}
		if err != nil {
			last = err
		}
		select {
		case <-deadline.C:
			if last == nil {
				last = errors.New("condition not met")
			}
			return fmt.Errorf("after %v: %w", timeout, last)
		case <-tick.C:
		}
	}
}
