package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

const (
	startTimeout = 60 * time.Second // a member (or a whole cluster) becomes ready
	stopTimeout  = 15 * time.Second // a member exits after SIGTERM before we SIGKILL it
	logTailLines = 150              // lines of each member log printed on failure
)

// Cluster is a set of synod or etcd member processes on loopback ports.
type Cluster struct {
	t       testing.TB
	Kind    string // "synod" or "etcd"
	Members []*Member
	opts    clusterOptions
}

// clusterOptions change how a cluster is started (startClusterWith).
type clusterOptions struct {
	ClientScheme, PeerScheme string      // "http" when empty; "https" for TLS
	ClientTLS                *tls.Config // the harness's clientv3 clients use it when set
	Flags                    []string    // appended to every member's command line
	// MemberFlags, when set, returns flags appended to one member's
	// command line (after Flags), e.g. a port of its own.
	MemberFlags func(m *Member) []string
}

// Member is one server process. Its command line never changes, so Restart
// runs the exact same command on the same data dir.
type Member struct {
	Index     int
	Name      string
	DataDir   string
	ClientURL string // http://127.0.0.1:port
	PeerURL   string
	Endpoint  string // 127.0.0.1:port (what etcdctl --endpoints and clientv3 take)
	LogPath   string
	Bin       string
	Args      []string
	ID        uint64      // member ID reported by Status, once known
	TLS       *tls.Config // the harness's client TLS, nil for plaintext

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the current process has exited
	exitErr error
	starts  int
	cli     *clientv3.Client
}

// Endpoints returns every member's endpoint.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, m := range c.Members {
		eps = append(eps, m.Endpoint)
	}
	return eps
}

// RunningEndpoints returns the endpoints of members whose process is running.
func (c *Cluster) RunningEndpoints() []string {
	var eps []string
	for _, m := range c.Members {
		if m.Running() {
			eps = append(eps, m.Endpoint)
		}
	}
	return eps
}

// startCluster starts an n-member cluster of the given kind ("synod" or
// "etcd") and waits until every member serves a linearizable read. extraFlags
// are appended to every member's command line (etcd flag syntax, which synod
// shares). The cluster is stopped at test end; member logs are printed if the
// test failed.
func startCluster(t testing.TB, kind string, n int, extraFlags ...string) *Cluster {
	t.Helper()
	return startClusterWith(t, kind, n, clusterOptions{Flags: extraFlags})
}

// startClusterWith is startCluster with URL schemes and client TLS.
func startClusterWith(t testing.TB, kind string, n int, opts clusterOptions) *Cluster {
	t.Helper()
	requireKind(t, kind)
	extraFlags := opts.Flags
	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		c, err := tryStartCluster(t, kind, n, attempt, extraFlags, opts)
		if err == nil {
			return c
		}
		lastErr = err
		if !c.portClash() {
			break
		}
		t.Logf("attempt %d: a port was taken by someone else; retrying on new ports: %v", attempt, err)
		c.stopAll()
	}
	t.Fatalf("starting %d-member %s cluster: %v", n, kind, lastErr)
	return nil
}

func tryStartCluster(t testing.TB, kind string, n, attempt int, extraFlags []string, opts clusterOptions) (*Cluster, error) {
	dir := t.TempDir() // registered before the stop cleanup below, so removed after it
	ports, err := freePorts(2 * n)
	if err != nil {
		t.Fatalf("free ports: %v", err)
	}
	c := &Cluster{t: t, Kind: kind, opts: opts}
	cs, ps := opts.ClientScheme, opts.PeerScheme
	if cs == "" {
		cs = "http"
	}
	if ps == "" {
		ps = "http"
	}
	token := "e2e-" + randHex(4)
	var initial []string
	for i := 0; i < n; i++ {
		m := &Member{
			Index:     i,
			Name:      fmt.Sprintf("m%d", i),
			ClientURL: fmt.Sprintf("%s://127.0.0.1:%d", cs, ports[2*i]),
			PeerURL:   fmt.Sprintf("%s://127.0.0.1:%d", ps, ports[2*i+1]),
			Endpoint:  fmt.Sprintf("127.0.0.1:%d", ports[2*i]),
			TLS:       opts.ClientTLS,
		}
		m.DataDir = filepath.Join(dir, m.Name+".data")
		m.LogPath = filepath.Join(dir, m.Name+".log")
		initial = append(initial, m.Name+"="+m.PeerURL)
		c.Members = append(c.Members, m)
	}
	for _, m := range c.Members {
		args := []string{
			"--name=" + m.Name,
			"--data-dir=" + m.DataDir,
			"--listen-client-urls=" + m.ClientURL,
			"--advertise-client-urls=" + m.ClientURL,
			"--listen-peer-urls=" + m.PeerURL,
			"--initial-advertise-peer-urls=" + m.PeerURL,
			"--initial-cluster=" + strings.Join(initial, ","),
			"--initial-cluster-state=new",
			"--initial-cluster-token=" + token,
		}
		args = append(args, extraFlags...)
		if opts.MemberFlags != nil {
			args = append(args, opts.MemberFlags(m)...)
		}
		switch kind {
		case "synod":
			m.Bin, m.Args = synodBin, append([]string{"serve"}, args...)
		case "etcd":
			m.Bin, m.Args = etcdBin, args
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			c.dumpLogs()
		}
		c.stopAll()
	})
	for _, m := range c.Members {
		if err := m.start(); err != nil {
			return c, err
		}
	}
	t.Logf("started %d-member %s cluster (attempt %d): %s; logs in %s", n, kind, attempt, strings.Join(c.Endpoints(), ","), dir)
	deadline := time.Now().Add(startTimeout)
	for _, m := range c.Members {
		if err := c.waitMemberReady(m, time.Until(deadline)); err != nil {
			return c, err
		}
	}
	return c, nil
}

// freePorts returns n distinct free loopback TCP ports.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// start launches the member process (appending to its log file).
func (m *Member) start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil && !isClosed(m.exited) {
		return fmt.Errorf("%s: already running", m.Name)
	}
	logf, err := os.OpenFile(m.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	m.starts++
	fmt.Fprintf(logf, "=== e2e: start #%d at %s: %s %s\n", m.starts, time.Now().Format(time.RFC3339Nano), m.Bin, strings.Join(m.Args, " "))
	cmd := exec.Command(m.Bin, m.Args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("%s: start: %v", m.Name, err)
	}
	exited := make(chan struct{})
	m.cmd, m.exited, m.exitErr = cmd, exited, nil
	go func() {
		err := cmd.Wait()
		logf.Close()
		m.mu.Lock()
		m.exitErr = err
		m.mu.Unlock()
		close(exited)
	}()
	return nil
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Running reports whether the member's process is alive.
func (m *Member) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cmd != nil && !isClosed(m.exited)
}

func (m *Member) exitStatus() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.exitErr
}

// signal sends sig to the member and waits up to timeout for it to exit.
func (m *Member) signal(sig syscall.Signal, timeout time.Duration) error {
	m.mu.Lock()
	cmd, exited := m.cmd, m.exited
	m.mu.Unlock()
	if cmd == nil || isClosed(exited) {
		return nil
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("%s (pid %d) did not exit within %v of %v", m.Name, cmd.Process.Pid, timeout, sig)
	}
}

// client returns a clientv3 client pinned to this member only (closed when
// the cluster stops).
func (m *Member) client(t testing.TB) *clientv3.Client {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cli == nil {
		cli, err := dialClientTLS(m.TLS, m.Endpoint)
		if err != nil {
			t.Fatalf("client for %s: %v", m.Name, err)
		}
		m.cli = cli
	}
	return m.cli
}

// Status asks this member for its status.
func (m *Member) Status(t testing.TB, timeout time.Duration) (*clientv3.StatusResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return m.client(t).Status(ctx, m.Endpoint)
}

// LogText returns the member's whole log file.
func (m *Member) LogText() string {
	b, _ := os.ReadFile(m.LogPath)
	return string(b)
}

// waitMemberReady waits until the member serves a linearizable Get and a
// Status, failing fast if its process exits.
func (c *Cluster) waitMemberReady(m *Member, timeout time.Duration) error {
	cli := m.client(c.t)
	err := waitFor(timeout, 100*time.Millisecond, func() (bool, error) {
		if !m.Running() {
			return false, permanent{fmt.Errorf("process exited: %v", m.exitStatus())}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := cli.Get(ctx, "e2e-readiness-probe"); err != nil {
			return false, fmt.Errorf("get: %w", err)
		}
		st, err := cli.Status(ctx, m.Endpoint)
		if err != nil {
			return false, fmt.Errorf("status: %w", err)
		}
		m.ID = st.Header.MemberId
		return true, nil
	})
	if err == nil && !m.Running() {
		err = fmt.Errorf("process exited: %v", m.exitStatus())
	}
	if err != nil {
		return fmt.Errorf("%s %s (%s) not ready: %v\n--- tail of %s:\n%s", c.Kind, m.Name, m.Endpoint, err, m.LogPath, tail(m.LogText(), 40))
	}
	return nil
}

// portClash reports whether a member died because its port was taken.
func (c *Cluster) portClash() bool {
	for _, m := range c.Members {
		if !m.Running() && strings.Contains(m.LogText(), "address already in use") {
			return true
		}
	}
	return false
}

// Kill9 kills member i with SIGKILL and waits for the process to be gone.
func (c *Cluster) Kill9(i int) {
	c.t.Helper()
	m := c.Members[i]
	if err := m.signal(syscall.SIGKILL, 10*time.Second); err != nil {
		c.t.Fatal(err)
	}
	c.t.Logf("%s: killed -9 %s (%s)", c.Kind, m.Name, m.Endpoint)
}

// StopMember stops member i gracefully (SIGTERM), falling back to SIGKILL.
func (c *Cluster) StopMember(i int) {
	c.t.Helper()
	m := c.Members[i]
	if err := m.signal(syscall.SIGTERM, stopTimeout); err != nil {
		c.t.Errorf("%v; sending SIGKILL", err)
		_ = m.signal(syscall.SIGKILL, 10*time.Second)
	}
	c.t.Logf("%s: stopped %s (%s)", c.Kind, m.Name, m.Endpoint)
}

// Restart starts member i again with the same command line and data dir and
// waits until it is ready.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	m := c.Members[i]
	if m.Running() {
		c.t.Fatalf("Restart(%d): %s is still running", i, m.Name)
	}
	if err := m.start(); err != nil {
		c.t.Fatal(err)
	}
	if err := c.waitMemberReady(m, startTimeout); err != nil {
		c.t.Fatal(err)
	}
	c.t.Logf("%s: restarted %s (%s)", c.Kind, m.Name, m.Endpoint)
}

// Kill9All kills every member with SIGKILL at (nearly) the same moment: a
// power loss.
func (c *Cluster) Kill9All() {
	c.t.Helper()
	for _, m := range c.Members {
		m.mu.Lock()
		if m.cmd != nil && !isClosed(m.exited) {
			_ = m.cmd.Process.Signal(syscall.SIGKILL)
		}
		m.mu.Unlock()
	}
	for i := range c.Members {
		c.Kill9(i) // waits for each to be gone
	}
}

// RestartAll starts every stopped member again (same command lines and data
// dirs) and waits until all are ready; unlike Restart it does not need a
// quorum to be up already.
func (c *Cluster) RestartAll() {
	c.t.Helper()
	for _, m := range c.Members {
		if !m.Running() {
			if err := m.start(); err != nil {
				c.t.Fatal(err)
			}
		}
	}
	deadline := time.Now().Add(startTimeout)
	for _, m := range c.Members {
		if err := c.waitMemberReady(m, time.Until(deadline)); err != nil {
			c.t.Fatal(err)
		}
	}
	c.t.Logf("%s: restarted all members", c.Kind)
}

// Stop stops every member (SIGTERM, then SIGKILL after a deadline).
func (c *Cluster) Stop() {
	c.t.Helper()
	for i := range c.Members {
		if c.Members[i].Running() {
			c.StopMember(i)
		}
	}
}

func (c *Cluster) stopAll() {
	var wg sync.WaitGroup
	for _, m := range c.Members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.signal(syscall.SIGTERM, stopTimeout); err != nil {
				_ = m.signal(syscall.SIGKILL, 10*time.Second)
			}
		}()
	}
	wg.Wait()
	for _, m := range c.Members {
		m.mu.Lock()
		if m.cli != nil {
			m.cli.Close()
			m.cli = nil
		}
		m.mu.Unlock()
	}
}

func (c *Cluster) dumpLogs() {
	for _, m := range c.Members {
		c.t.Logf("===== %s %s (%s) log %s, last %d lines:\n%s", c.Kind, m.Name, m.Endpoint, m.LogPath, logTailLines, tail(m.LogText(), logTailLines))
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d lines omitted)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// normalizeEndpoints replaces member endpoints (random ports) by <mN>.
func (c *Cluster) normalizeEndpoints(s string) string {
	for _, m := range c.Members {
		s = strings.ReplaceAll(s, m.ClientURL, "<"+m.Name+">")
		s = strings.ReplaceAll(s, m.Endpoint, "<"+m.Name+">")
	}
	return s
}

// memberByID maps a member ID to its index, -1 if unknown.
func (c *Cluster) memberByID(id uint64) int {
	for i, m := range c.Members {
		if m.ID != 0 && m.ID == id {
			return i
		}
	}
	return -1
}

// WaitLeader waits until every running member answers Status, they all name
// the same leader, and that leader is a running member; it returns its index.
func (c *Cluster) WaitLeader(timeout time.Duration) int {
	c.t.Helper()
	leader := -1
	err := waitFor(timeout, 100*time.Millisecond, func() (bool, error) {
		var lead uint64
		for _, m := range c.Members {
			if !m.Running() {
				continue
			}
			st, err := m.Status(c.t, time.Second)
			if err != nil {
				return false, fmt.Errorf("%s status: %w", m.Name, err)
			}
			if m.ID == 0 {
				m.ID = st.Header.MemberId
			}
			if st.Leader == 0 {
				return false, fmt.Errorf("%s knows no leader", m.Name)
			}
			if lead != 0 && st.Leader != lead {
				return false, fmt.Errorf("members disagree on the leader: %x vs %x", lead, st.Leader)
			}
			lead = st.Leader
		}
		i := c.memberByID(lead)
		if i < 0 {
			return false, fmt.Errorf("leader %x is not a known member", lead)
		}
		if !c.Members[i].Running() {
			return false, fmt.Errorf("leader %x (%s) is not running", lead, c.Members[i].Name)
		}
		leader = i
		return true, nil
	})
	if err != nil {
		c.t.Fatalf("%s: no agreed leader: %v", c.Kind, err)
	}
	return leader
}

// WaitConverged waits until every running member has applied everything the
// cluster had committed when it was called (so serializable reads on any
// member see every acknowledged write).
func (c *Cluster) WaitConverged(timeout time.Duration) {
	c.t.Helper()
	leader := c.WaitLeader(timeout)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	lm := c.Members[leader]
	gr, err := lm.client(c.t).Get(ctx, "e2e-converge-probe")
	if err != nil {
		c.t.Fatalf("%s: linearizable get on leader %s: %v", c.Kind, lm.Name, err)
	}
	lst, err := lm.client(c.t).Status(ctx, lm.Endpoint)
	if err != nil {
		c.t.Fatalf("%s: status of leader %s: %v", c.Kind, lm.Name, err)
	}
	rev, commit := gr.Header.Revision, lst.RaftIndex
	for _, m := range c.Members {
		if !m.Running() {
			continue
		}
		var last string
		err := waitFor(timeout, 20*time.Millisecond, func() (bool, error) {
			st, err := m.Status(c.t, time.Second)
			if err != nil {
				return false, err
			}
			last = fmt.Sprintf("revision %d raftIndex %d raftAppliedIndex %d", st.Header.Revision, st.RaftIndex, st.RaftAppliedIndex)
			return st.Header.Revision >= rev && st.RaftAppliedIndex >= commit, nil
		})
		if err != nil {
			c.t.Fatalf("%s: %s did not catch up to revision %d / applied index %d (last status: %s): %v", c.Kind, m.Name, rev, commit, last, err)
		}
	}
}

// logLinesSinceStart returns the member log lines written since its latest start.
func (m *Member) logLinesSinceStart() []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(m.LogText()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "=== e2e: start #") {
			out = out[:0]
			continue
		}
		out = append(out, line)
	}
	return out
}
