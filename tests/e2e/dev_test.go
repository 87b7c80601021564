package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// synod dev's fixed ports (etcd's Procfile layout): clients, then peers.
var (
	devClientPorts = []int{2379, 22379, 32379}
	devPeerPorts   = []int{12380, 22380, 32380}
	devConsulPorts = []int{8500, 8501, 8502} // Consul's HTTP API, one per member
)

// TestDevSmoke runs `synod dev`, uses all three members through etcdctl,
// then interrupts it and checks it exits 0 and leaves nothing behind.
func TestDevSmoke(t *testing.T) {
	requireKind(t, "synod")
	for _, p := range slicesConcat(slicesConcat(devClientPorts, devPeerPorts), devConsulPorts) {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Skipf("port %d is busy (%v); synod dev needs its fixed ports", p, err)
		}
		l.Close()
	}
	dataDir := filepath.Join(t.TempDir(), "dev")
	cmd := exec.Command(synodBin, "dev", "--data-dir", dataDir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	exited := make(chan error, 1)
	var out lockedBuffer
	endpointsLine := make(chan string, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			l := sc.Text()
			out.Write([]byte(l + "\n"))
			if strings.HasPrefix(l, "endpoints: ") {
				select {
				case endpointsLine <- strings.TrimPrefix(l, "endpoints: "):
				default:
				}
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() {
		<-copied // Wait must not run before the pipe is drained
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		if t.Failed() {
			t.Logf("synod dev stdout:\n%s\nsynod dev stderr (tail):\n%s", out.String(), tail(stderr.String(), 100))
		}
	})

	var line string
	select {
	case line = <-endpointsLine:
	case err := <-exited:
		t.Fatalf("synod dev exited before printing its endpoints: %v", err)
	case <-time.After(startTimeout):
		t.Fatalf("synod dev printed no 'endpoints: ' line within %v", startTimeout)
	}
	t.Logf("synod dev (pid %d) printed endpoints: %s", pid, line)
	eps := strings.Split(line, ",")
	var want []string
	for _, p := range devClientPorts {
		want = append(want, "127.0.0.1:"+strconv.Itoa(p))
	}
	if strings.Join(eps, ",") != strings.Join(want, ",") {
		t.Errorf("synod dev endpoints line %q, want %q", line, strings.Join(want, ","))
	}

	// Members may still be electing a leader when the line is printed.
	if err := waitFor(startTimeout, 100*time.Millisecond, func() (bool, error) {
		o, e, code := etcdctl(t, want, "endpoint", "health")
		return code == 0, fmt.Errorf("endpoint health: exit %d: %s%s", code, o, e)
	}); err != nil {
		t.Fatal(err)
	}
	for i, ep := range want {
		key, val := fmt.Sprintf("dev/k%d", i), fmt.Sprintf("v%d", i)
		if o, e, code := etcdctl(t, []string{ep}, "put", key, val); code != 0 || o != "OK\n" || e != "" {
			t.Errorf("put via %s: exit %d stdout %q stderr %q", ep, code, o, e)
		}
	}
	for _, ep := range want {
		o, e, code := etcdctl(t, []string{ep}, "get", "dev/", "--prefix")
		if wantOut := "dev/k0\nv0\ndev/k1\nv1\ndev/k2\nv2\n"; code != 0 || o != wantOut || e != "" {
			t.Errorf("get via %s: exit %d stdout %q stderr %q, want stdout %q", ep, code, o, e, wantOut)
		}
	}

	for i, p := range devConsulPorts { // each member's Consul agent is its own node
		var self struct {
			Config struct{ NodeName, Datacenter string }
		}
		if err := getJSON(fmt.Sprintf("http://127.0.0.1:%d/v1/agent/self", p), &self); err != nil {
			t.Errorf("Consul API on %d: %v", p, err)
		} else if want := fmt.Sprintf("infra%d", i+1); self.Config.NodeName != want || self.Config.Datacenter != "dc1" {
			t.Errorf("Consul API on %d: agent %+v, want node %s in dc1", p, self.Config, want)
		}
	}

	// Processes synod dev started (if it runs members as children), to check they are gone later.
	children := descendants(pid)

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("synod dev exited with %v after SIGINT, want exit status 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("synod dev did not exit within 30s of SIGINT")
	}
	for _, c := range children {
		if alive(c) {
			t.Errorf("synod dev's child process %d is still running after it exited", c)
		}
	}
	if left := processGroup(pid); len(left) > 0 {
		t.Errorf("processes of synod dev's process group still running after it exited: %v", left)
	}
	for _, p := range slicesConcat(slicesConcat(devClientPorts, devPeerPorts), devConsulPorts) {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p), time.Second); err == nil {
			c.Close()
			t.Errorf("something still listens on port %d after synod dev exited", p)
		}
	}
	if ents, err := os.ReadDir(dataDir); err != nil || len(ents) == 0 {
		t.Errorf("synod dev --data-dir %s holds no member data after exit (%v)", dataDir, err)
	}
}

func slicesConcat(a, b []int) []int { return append(append([]int{}, a...), b...) }

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// procStat returns (ppid, pgid, state) of pid from /proc.
func procStat(pid int) (ppid, pgid int, state string, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, "", false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, "", false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 4 {
		return 0, 0, "", false
	}
	ppid, _ = strconv.Atoi(f[1])
	pgid, _ = strconv.Atoi(f[2])
	return ppid, pgid, f[0], true
}

func allPids() []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, n)
		}
	}
	return pids
}

// descendants returns every process below root.
func descendants(root int) []int {
	parent := map[int]int{}
	for _, p := range allPids() {
		if pp, _, _, ok := procStat(p); ok {
			parent[p] = pp
		}
	}
	var out []int
	for p := range parent {
		for q := parent[p]; q > 1; q = parent[q] {
			if q == root {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// processGroup returns the live (non-zombie) processes in process group pgid.
func processGroup(pgid int) []int {
	var out []int
	for _, p := range allPids() {
		if _, g, st, ok := procStat(p); ok && g == pgid && st != "Z" {
			out = append(out, p)
		}
	}
	return out
}

func alive(pid int) bool {
	_, _, st, ok := procStat(pid)
	return ok && st != "Z"
}

// getJSON decodes the JSON answer of a GET, failing on a status other than 200.
func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
