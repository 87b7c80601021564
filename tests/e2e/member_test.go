package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// memberHeader heads testdata/member.golden.
const memberHeader = "# etcdctl member commands recorded from a 3-member etcd v3.7.3 cluster growing a learner.\n" +
	"# Regenerate: go test ./tests/e2e/ -run 'TestMemberReconfig/etcd' -update\n" +
	"# Normalized: member IDs (<id:NAME>), the cluster ID, URLs (<peer:NAME>, <client:NAME>), table\n" +
	"# widths (runs of spaces and dashes) and the order of rows and of ETCD_INITIAL_CLUSTER entries\n" +
	"# (both follow member IDs, which are random).\n"

// memberRun records a reconfiguration transcript on one cluster.
type memberRun struct {
	t     *testing.T
	cl    *Cluster
	eps   []string
	ids   map[uint64]string // member ID -> name
	cid   uint64
	out   strings.Builder
	added *Member // the member the test adds
}

// TestMemberReconfig grows a running cluster by a learner with the real
// etcdctl (member add --learner), starts the new process from the
// ETCD_* lines etcdctl printed (--initial-cluster-state existing), promotes
// it once it is in sync, lists, updates and removes members, and compares
// the whole transcript with etcd's.
func TestMemberReconfig(t *testing.T) {
	for _, kind := range kinds() {
		t.Run(kind, func(t *testing.T) {
			if *update && kind == "etcd" && etcdBin == "" {
				t.Fatal("-update needs the real etcd binary: " + etcdSkip)
			}
			cl := startCluster(t, kind, 3)
			r := &memberRun{t: t, cl: cl, eps: []string{cl.Members[0].Endpoint, cl.Members[2].Endpoint}, ids: map[uint64]string{}}
			r.out.WriteString(memberHeader)
			r.learnerLifecycle()
			got := r.out.String()
			if *update && kind == "etcd" {
				if err := os.WriteFile(goldenPath("member"), []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				t.Logf("wrote %s", goldenPath("member"))
				return
			}
			compareGolden(t, kind, "member", got)
		})
	}
}

func (r *memberRun) learnerLifecycle() {
	t, cl := r.t, r.cl
	r.learnIDs()
	m3 := r.newMember()
	// The strict reconfiguration check refuses changes until the members
	// have been connected for 5 s; retry only that refusal.
	add := []string{"member", "add", "m3", "--learner", "--peer-urls=" + m3.PeerURL}
	stdout, stderr, code := r.retry("unhealthy cluster", add...)
	env := parseEnv(stdout)
	if env["ETCD_INITIAL_CLUSTER_STATE"] != "existing" || env["ETCD_NAME"] != "m3" {
		t.Fatalf("member add printed %q", stdout)
	}
	r.learnIDs()
	r.record(add, stdout, stderr, code)
	id3 := r.idOf("m3")
	r.step("member", "promote", id3) // not started: not in sync
	r.step("member", "list", "-w", "table")

	m3.Args = append(m3.Args, "--initial-cluster="+env["ETCD_INITIAL_CLUSTER"],
		"--initial-advertise-peer-urls="+env["ETCD_INITIAL_ADVERTISE_PEER_URLS"],
		"--initial-cluster-state="+env["ETCD_INITIAL_CLUSTER_STATE"])
	cl.Members = append(cl.Members, m3)
	if err := m3.start(); err != nil {
		t.Fatal(err)
	}
	promote := []string{"member", "promote", id3}
	stdout, stderr, code = r.retry("in sync with leader", promote...)
	r.record(promote, stdout, stderr, code)
	r.step("member", "promote", id3) // a voter now
	if err := cl.waitMemberReady(m3, startTimeout); err != nil {
		t.Fatal(err)
	}
	r.learnIDs()
	r.step("member", "list", "-w", "table")
	r.step("member", "update", id3, "--peer-urls="+m3.PeerURL)

	id1 := r.idOf("m1")
	r.step("member", "remove", id1)
	if err := waitFor(30*time.Second, 50*time.Millisecond, func() (bool, error) { return !cl.Members[1].Running(), nil }); err != nil {
		t.Fatalf("%s: the removed member kept running", cl.Kind)
	}
	if cl.Kind == "synod" && !strings.Contains(cl.Members[1].LogText(), "the member has been permanently removed from the cluster") {
		t.Errorf("the removed member did not say why it stopped:\n%s", tail(cl.Members[1].LogText(), 20))
	}
	// If m1 led, a new leader takes a moment before it accepts another
	// change (etcd lets such a change time out; synod holds it until the
	// new leader has applied its first entry): a write settles that.
	cl.WaitLeader(30 * time.Second)
	if _, e, code := etcdctl(t, r.eps, "put", "settle", "1"); code != 0 {
		t.Fatalf("put after the removal: %s", e)
	}
	r.step("member", "remove", id1) // removed IDs are never found again
	r.step("member", "remove", "abc")
	r.step("member", "list")
}

// newMember prepares (but does not start) a fourth member m3 with the
// cluster's flags.
func (r *memberRun) newMember() *Member {
	ports, err := freePorts(2)
	if err != nil {
		r.t.Fatal(err)
	}
	m0 := r.cl.Members[0]
	m := &Member{
		Index:     len(r.cl.Members),
		Name:      "m3",
		ClientURL: fmt.Sprintf("http://127.0.0.1:%d", ports[0]),
		PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[1]),
		Endpoint:  fmt.Sprintf("127.0.0.1:%d", ports[0]),
		Bin:       m0.Bin,
	}
	m.DataDir = filepath.Join(filepath.Dir(m0.DataDir), "m3.data")
	m.LogPath = filepath.Join(filepath.Dir(m0.LogPath), "m3.log")
	for _, a := range m0.Args {
		switch {
		case strings.HasPrefix(a, "--initial-cluster="), strings.HasPrefix(a, "--initial-cluster-state="),
			strings.HasPrefix(a, "--initial-advertise-peer-urls="):
		case strings.HasPrefix(a, "--name="):
			m.Args = append(m.Args, "--name=m3")
		case strings.HasPrefix(a, "--data-dir="):
			m.Args = append(m.Args, "--data-dir="+m.DataDir)
		case strings.HasPrefix(a, "--listen-client-urls="), strings.HasPrefix(a, "--advertise-client-urls="):
			m.Args = append(m.Args, a[:strings.Index(a, "=")+1]+m.ClientURL)
		case strings.HasPrefix(a, "--listen-peer-urls="):
			m.Args = append(m.Args, "--listen-peer-urls="+m.PeerURL)
		default:
			m.Args = append(m.Args, a)
		}
	}
	r.added = m
	return m
}

// learnIDs maps every member's ID to its name (by peer URL) and notes the
// cluster ID.
func (r *memberRun) learnIDs() {
	cli := newClient(r.t, r.eps...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.MemberList(ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	r.cid = resp.Header.ClusterId
	for _, mem := range resp.Members {
		for _, m := range append(r.cl.Members, r.added) {
			if m != nil && len(mem.PeerURLs) > 0 && mem.PeerURLs[0] == m.PeerURL {
				r.ids[mem.ID] = m.Name
			}
		}
	}
}

func (r *memberRun) idOf(name string) string {
	for id, n := range r.ids {
		if n == name {
			return fmt.Sprintf("%x", id)
		}
	}
	r.t.Fatalf("no member named %s", name)
	return ""
}

// retry runs etcdctl until its error output stops containing transient
// and returns that last run.
func (r *memberRun) retry(transient string, args ...string) (stdout, stderr string, code int) {
	err := waitFor(40*time.Second, 200*time.Millisecond, func() (bool, error) {
		stdout, stderr, code = etcdctl(r.t, r.eps, args...)
		if code != 0 && strings.Contains(stderr, transient) {
			return false, fmt.Errorf("%s", strings.TrimSpace(stderr))
		}
		return true, nil
	})
	if err != nil {
		r.t.Fatalf("%s: etcdctl %s: %v", r.cl.Kind, strings.Join(args, " "), err)
	}
	return stdout, stderr, code
}

func (r *memberRun) step(args ...string) {
	o, e, code := etcdctl(r.t, r.eps, args...)
	r.record(args, o, e, code)
}

func (r *memberRun) record(args []string, stdout, stderr string, code int) {
	r.out.WriteString("\n=== " + r.normalize(strings.Join(args, " ")) + "\n")
	writeStream(&r.out, "1", r.normalizeOutput(stdout))
	writeStream(&r.out, "2", r.normalize(normalizeStderr(stderr)))
	fmt.Fprintf(&r.out, "exit %d\n", code)
}

var (
	spaceRun = regexp.MustCompile(` {2,}`)
	dashRun  = regexp.MustCompile(`-{2,}`)
)

// normalize replaces IDs and URLs by names.
func (r *memberRun) normalize(s string) string {
	// etcdctl prints "Member %16x ... cluster %16x": padded when an ID
	// has fewer than 16 hex digits.
	for id, name := range r.ids {
		s = strings.ReplaceAll(s, fmt.Sprintf("Member %16x", id), "Member <id:"+name+">")
		s = strings.ReplaceAll(s, fmt.Sprintf("%x", id), "<id:"+name+">")
	}
	s = strings.ReplaceAll(s, fmt.Sprintf("cluster %16x", r.cid), "cluster <cluster>")
	s = strings.ReplaceAll(s, fmt.Sprintf("%x", r.cid), "<cluster>")
	for _, m := range append(r.cl.Members, r.added) {
		if m == nil {
			continue
		}
		s = strings.ReplaceAll(s, m.PeerURL, "<peer:"+m.Name+">")
		s = strings.ReplaceAll(s, m.ClientURL, "<client:"+m.Name+">")
	}
	return s
}

// normalizeOutput also evens out table widths and sorts what follows the
// order of member IDs: table rows, simple list rows, ETCD_INITIAL_CLUSTER.
func (r *memberRun) normalizeOutput(s string) string {
	s = r.normalize(s)
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	var rows []int
	for i, l := range lines {
		l = dashRun.ReplaceAllString(spaceRun.ReplaceAllString(l, " "), "--")
		if v, ok := strings.CutPrefix(l, "ETCD_INITIAL_CLUSTER="); ok {
			parts := strings.Split(strings.Trim(v, `"`), ",")
			sort.Strings(parts)
			l = `ETCD_INITIAL_CLUSTER="` + strings.Join(parts, ",") + `"`
		}
		lines[i] = l
		if strings.HasPrefix(l, "│ <id:") || strings.HasPrefix(l, "| <id:") || strings.HasPrefix(l, "<id:") {
			rows = append(rows, i)
		}
	}
	sorted := make([]string, len(rows))
	for k, i := range rows {
		sorted[k] = lines[i]
	}
	sort.Strings(sorted)
	for k, i := range rows {
		lines[i] = sorted[k]
	}
	if s == "" {
		return ""
	}
	return strings.Join(lines, "\n") + "\n"
}

// parseEnv reads the ETCD_*="..." lines member add prints.
func parseEnv(s string) map[string]string {
	env := map[string]string{}
	for _, l := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok && strings.HasPrefix(k, "ETCD_") {
			env[k] = strings.Trim(v, `"`)
		}
	}
	return env
}
