package check

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/synod-db/synod/check/faultproxy"
)

// ClusterConfig describes the cluster of real `synod serve` processes a
// check runs against.
type ClusterConfig struct {
	// Bin is the synod executable.
	Bin string
	// Nodes is the number of members.
	Nodes int
	// Dir holds one directory per member (its working directory, data
	// directory, peer sockets and log).
	Dir string
	// Token is the --initial-cluster-token.
	Token string
	// Seed seeds the proxies' random faults.
	Seed int64
	// ExtraArgs are appended to every member's `synod serve` command line.
	ExtraArgs []string
	// Consul gives every member a Consul HTTP API listener of its own
	// (--consul-listen-url on a free loopback port), for the catalog
	// workload.
	Consul bool
}

// member is one `synod serve` process and what the checker knows about it.
type member struct {
	idx       int
	bin       string
	name      string
	dir       string // working directory: the peer sockets live here
	clientURL string
	consulURL string // empty unless ClusterConfig.Consul
	args      []string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the current process exited
	expect  bool          // the checker killed it: its exit is expected
	paused  bool
	removed bool     // removed from the cluster; its data is gone until it rejoins
	crashes []string // unexpected exits
}

// Cluster is a running cluster of synod processes whose peer links all go
// through fault-injecting proxies.
//
// Peer traffic runs over unix sockets named by relative URLs
// (unix://m1.sock, ...): every member gets the same --initial-cluster, so
// member and cluster IDs are the ones of an ordinary cluster, but each member
// runs in its own directory, where m1.sock is its own listener and every
// other mJ.sock is the proxy that carries its messages to member J. So for
// each ordered pair (i, j) there is exactly one proxy, i→j, that can be
// faulted on its own.
type Cluster struct {
	cfg     ClusterConfig
	members []*member
	proxies [][]*faultproxy.Proxy // [from][to]; nil on the diagonal
}

// StartCluster lays out the directories, starts the proxies and the members,
// and returns without waiting for a leader (see WaitHealthy).
func StartCluster(cfg ClusterConfig) (*Cluster, error) {
	if cfg.Nodes < 1 {
		return nil, fmt.Errorf("check: --nodes must be at least 1, got %d", cfg.Nodes)
	}
	c := &Cluster{cfg: cfg}
	var initial []string
	for i := 0; i < cfg.Nodes; i++ {
		name := fmt.Sprintf("m%d", i+1)
		initial = append(initial, fmt.Sprintf("%s=unix://%s.sock", name, name))
	}
	for i := 0; i < cfg.Nodes; i++ {
		m, err := c.newMember(i, strings.Join(initial, ","))
		if err != nil {
			c.Stop()
			return nil, err
		}
		c.members = append(c.members, m)
	}
	if err := c.startProxies(); err != nil {
		c.Stop()
		return nil, err
	}
	for _, m := range c.members {
		if err := m.start(); err != nil {
			c.Stop()
			return nil, err
		}
	}
	return c, nil
}

func (c *Cluster) newMember(i int, initial string) (*member, error) {
	name := fmt.Sprintf("m%d", i+1)
	dir := filepath.Join(c.cfg.Dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	clientURL := fmt.Sprintf("http://127.0.0.1:%d", port)
	peerURL := fmt.Sprintf("unix://%s.sock", name)
	args := []string{"serve", "--name", name, "--data-dir", "data",
		"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", initial, "--initial-cluster-token", c.cfg.Token,
		"--initial-cluster-state", "new", "--log-level", "warn"}
	var consulURL string
	if c.cfg.Consul {
		if port, err = freePort(); err != nil {
			return nil, err
		}
		consulURL = fmt.Sprintf("http://127.0.0.1:%d", port)
		args = append(args, "--consul-listen-url", consulURL)
	}
	args = append(args, c.cfg.ExtraArgs...)
	return &member{idx: i, bin: c.cfg.Bin, name: name, dir: dir, clientURL: clientURL, consulURL: consulURL, args: args}, nil
}

// startProxies starts, for every ordered pair (i, j), the proxy in i's
// directory that forwards to j's peer socket.
func (c *Cluster) startProxies() error {
	n := len(c.members)
	c.proxies = make([][]*faultproxy.Proxy, n)
	for i := range c.members {
		c.proxies[i] = make([]*faultproxy.Proxy, n)
		for j, to := range c.members {
			if i == j {
				continue
			}
			listen := filepath.Join(c.members[i].dir, to.name+".sock")
			os.Remove(listen)
			target := filepath.Join(to.dir, to.name+".sock")
			p, err := faultproxy.Listen("unix", listen, "unix", target, c.cfg.Seed+int64(i*n+j))
			if err != nil {
				return err
			}
			c.proxies[i][j] = p
		}
	}
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("check: finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// start runs the member's process. A socket left by a killed process is
// removed first.
func (m *member) start() error {
	os.Remove(filepath.Join(m.dir, m.name+".sock"))
	logf, err := os.OpenFile(filepath.Join(m.dir, "synod.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	cmd := exec.Command(m.bin, m.args...)
	cmd.Dir = m.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	dieWithChecker(cmd)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("check: starting %s: %w", m.name, err)
	}
	exited := make(chan struct{})
	m.mu.Lock()
	m.cmd, m.exited, m.expect, m.paused = cmd, exited, false, false
	m.mu.Unlock()
	go func() {
		err := cmd.Wait()
		logf.Close()
		m.mu.Lock()
		if !m.expect {
			m.crashes = append(m.crashes, fmt.Sprintf("%s exited on its own: %v (see %s)", m.name, err, filepath.Join(m.dir, "synod.log")))
		}
		m.mu.Unlock()
		close(exited)
	}()
	return nil
}

// signal sends sig to the current process, if it runs.
func (m *member) signal(sig syscall.Signal) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil || m.cmd.Process == nil {
		return errors.New("check: " + m.name + " is not running")
	}
	select {
	case <-m.exited:
		return errors.New("check: " + m.name + " is not running")
	default:
	}
	return m.cmd.Process.Signal(sig)
}

// kill sends SIGKILL and waits for the process to exit.
func (m *member) kill() error {
	m.mu.Lock()
	m.expect = true
	exited := m.exited
	m.mu.Unlock()
	if exited == nil {
		return nil
	}
	err := m.signal(syscall.SIGKILL)
	<-exited
	m.mu.Lock()
	m.paused = false
	m.mu.Unlock()
	if err != nil && !strings.Contains(err.Error(), "not running") {
		return err
	}
	return nil
}

// running reports whether the member's process is alive.
func (m *member) running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.exited == nil {
		return false
	}
	select {
	case <-m.exited:
		return false
	default:
		return true
	}
}

func (m *member) setPaused(p bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.paused = p
}

func (m *member) isPaused() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.paused
}

// Size is the number of members.
func (c *Cluster) Size() int { return len(c.members) }

// Name is member i's name.
func (c *Cluster) Name(i int) string { return c.members[i].name }

// Endpoint is member i's client endpoint (host:port).
func (c *Cluster) Endpoint(i int) string {
	return strings.TrimPrefix(c.members[i].clientURL, "http://")
}

// ConsulAddr is member i's Consul HTTP API address (host:port), empty when
// the cluster was started without Consul listeners.
func (c *Cluster) ConsulAddr(i int) string {
	return strings.TrimPrefix(c.members[i].consulURL, "http://")
}

// Kill kills member i with SIGKILL and waits for it to exit.
func (c *Cluster) Kill(i int) error { return c.members[i].kill() }

// Restart starts member i again from its data directory. A removed member
// is left alone: it comes back only through Rejoin.
func (c *Cluster) Restart(i int) error {
	if c.members[i].running() || c.Removed(i) {
		return nil
	}
	return c.members[i].start()
}

// ExpectExit tells the cluster that member i's process is about to exit
// (it is being removed and stops on its own), so the exit is not a crash.
func (c *Cluster) ExpectExit(i int) {
	m := c.members[i]
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expect = true
}

// expectNoExit undoes ExpectExit (the removal did not happen).
func (c *Cluster) expectNoExit(i int) {
	m := c.members[i]
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expect = false
}

// Discard waits up to wait for member i's process to exit, kills it if it
// has not, and deletes its data directory: the member was removed from the
// cluster and can come back only as a new member. It reports whether the
// process exited on its own.
func (c *Cluster) Discard(i int, wait time.Duration) (bool, error) {
	m := c.members[i]
	c.ExpectExit(i)
	m.mu.Lock()
	exited := m.exited
	m.removed = true
	m.mu.Unlock()
	byItself := true
	if exited != nil {
		select {
		case <-exited:
		case <-time.After(wait):
			byItself = false
			m.signal(syscall.SIGCONT)
			if err := m.kill(); err != nil {
				return false, err
			}
		}
	}
	if err := os.RemoveAll(filepath.Join(m.dir, "data")); err != nil {
		return byItself, fmt.Errorf("check: discarding %s's data: %w", m.name, err)
	}
	return byItself, nil
}

// Removed reports whether member i was removed and has not rejoined.
func (c *Cluster) Removed(i int) bool {
	m := c.members[i]
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.removed
}

// PeerURL is member i's peer URL (relative: see Cluster).
func (c *Cluster) PeerURL(i int) string { return fmt.Sprintf("unix://%s.sock", c.members[i].name) }

// StartJoining starts a removed member, with an empty data directory, as a
// new member of the running cluster (--initial-cluster-state existing). It
// must have been added (MemberAdd) first.
func (c *Cluster) StartJoining(i int) error {
	m := c.members[i]
	if m.running() {
		return nil
	}
	m.mu.Lock()
	for k, a := range m.args {
		if a == "--initial-cluster-state" && k+1 < len(m.args) {
			m.args[k+1] = "existing"
		}
	}
	m.removed = false
	m.mu.Unlock()
	return m.start()
}

// Pause stops member i with SIGSTOP.
func (c *Cluster) Pause(i int) error {
	if err := c.members[i].signal(syscall.SIGSTOP); err != nil {
		return err
	}
	c.members[i].setPaused(true)
	return nil
}

// Resume continues member i with SIGCONT.
func (c *Cluster) Resume(i int) error {
	if !c.members[i].isPaused() {
		return nil
	}
	if err := c.members[i].signal(syscall.SIGCONT); err != nil {
		return err
	}
	c.members[i].setPaused(false)
	return nil
}

// SetLink sets the faults of the link carrying from's messages to to.
func (c *Cluster) SetLink(from, to int, f faultproxy.Faults) error {
	return c.proxies[from][to].Set(f)
}

// Link returns the faults currently set on the link from→to.
func (c *Cluster) Link(from, to int) faultproxy.Faults { return c.proxies[from][to].Faults() }

// HealNetwork removes every link fault.
func (c *Cluster) HealNetwork() {
	for i := range c.proxies {
		for j, p := range c.proxies[i] {
			if i != j && p != nil {
				p.Heal()
			}
		}
	}
}

// HealAll heals the network, resumes paused members and restarts stopped
// ones.
func (c *Cluster) HealAll() error {
	c.HealNetwork()
	var errs []error
	for i := range c.members {
		errs = append(errs, c.Resume(i), c.Restart(i))
	}
	return errors.Join(errs...)
}

// Crashes lists the members' unexpected exits so far.
func (c *Cluster) Crashes() []string {
	var out []string
	for _, m := range c.members {
		m.mu.Lock()
		out = append(out, m.crashes...)
		m.mu.Unlock()
	}
	return out
}

// Stop kills every member (resuming it first, so SIGKILL is delivered at
// once) and closes the proxies.
func (c *Cluster) Stop() {
	for _, m := range c.members {
		if m.running() {
			m.signal(syscall.SIGCONT)
			m.kill()
		}
	}
	for i := range c.proxies {
		for _, p := range c.proxies[i] {
			if p != nil {
				p.Close()
			}
		}
	}
}

// Client returns a client pinned to member i (no balancing to others), with
// its logs discarded. The caller closes it. It sets no keepalive: requests
// waiting on a paused member must stay waiting (each call has its own
// deadline), so the member answers them the moment it continues, as a real
// client's would be.
func (c *Cluster) Client(i int) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:   []string{c.Endpoint(i)},
		DialTimeout: 2 * time.Second,
		Logger:      zap.NewNop(),
	})
}

// Status asks member i for its status.
func (c *Cluster) Status(ctx context.Context, cli *clientv3.Client, i int) (*clientv3.StatusResponse, error) {
	return cli.Status(ctx, c.Endpoint(i))
}
