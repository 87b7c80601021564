package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// The migration tests (migrate_test.go) load the same history into a source
// cluster, move it with a snapshot file and compare what etcdctl shows on
// both sides. These are their helpers.

const (
	migrationRoot = "root:rootpw" // etcdctl --user of the migrated clusters
	migrationUser = "u1:u1pw"     // a user whose role reads /a only
	migrationTTL  = "600"         // the granted TTL of the migrated lease
)

// loadMigrationHistory writes, with etcdctl, a history with several versions
// of keys, deletions, a txn of three changes, a lease with two keys, a
// compaction, a user and a role with a permission, and auth enabled. It
// returns the lease ID (hex) and the compaction revision.
func loadMigrationHistory(t *testing.T, ep string) (leaseID string, compactRev int) {
	t.Helper()
	run := func(stdin string, args ...string) string {
		t.Helper()
		out, errOut, code := etcdctlStdin(t, []string{ep}, stdin, args...)
		if code != 0 {
			t.Fatalf("etcdctl %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}
	for i := 1; i <= 3; i++ {
		run("", "put", "/a", fmt.Sprint("v", i))
		run("", "put", "b", fmt.Sprint("w", i))
	}
	run("", "del", "/a")
	run("", "put", "/a", "again")
	run("\nput x 1\nput y 2\ndel b\n\n\n", "txn")
	f := strings.Fields(run("", "lease", "grant", migrationTTL))
	if len(f) < 2 {
		t.Fatalf("lease grant printed %q", f)
	}
	leaseID = f[1]
	run("", "put", "--lease="+leaseID, "lk1", "lv")
	run("", "put", "--lease="+leaseID, "lk2", "lv")
	compactRev = 5
	run("", "compact", fmt.Sprint(compactRev))
	run("", "put", "c", "1")
	run("", "del", "c")
	run("", "user", "add", migrationRoot)
	run("", "role", "add", "r1")
	run("", "role", "grant-permission", "r1", "read", "/a")
	run("", "user", "add", migrationUser)
	run("", "user", "grant-role", "u1", "r1")
	run("", "auth", "enable")
	return leaseID, compactRev
}

// migrationView is what etcdctl shows of a migrated cluster: command →
// output, with what differs between clusters (IDs, terms, the remaining TTL)
// normalized.
type migrationView map[string]string

var (
	idsRE       = regexp.MustCompile(`"cluster_id":\d+,"member_id":\d+,`)
	termRE      = regexp.MustCompile(`"raft_term":\d+`)
	remainingRE = regexp.MustCompile(`remaining\(\d+s\)`)
	endpointRE  = regexp.MustCompile(`127\.0\.0\.1:\d+`)
	attachedRE  = regexp.MustCompile(`attached keys\(\[[^\]]*\]\)`)
)

// sortAttached sorts the keys of timetolive's "attached keys([...])" (etcd
// lists them in its map's order).
func sortAttached(s string) string {
	keys := strings.Fields(strings.TrimSuffix(strings.TrimPrefix(s, "attached keys(["), "])"))
	sort.Strings(keys)
	return "attached keys([" + strings.Join(keys, " ") + "])"
}

// hashRevRE is the hash_revision etcdctl endpoint hashkv prints last.
var hashRevRE = regexp.MustCompile(`, [0-9]+\n$`)

// observeMigrated reads the view of the member at ep at revision rev.
func observeMigrated(t *testing.T, ep, leaseID string, rev int64) migrationView {
	t.Helper()
	v := migrationView{}
	cmds := [][]string{
		{"endpoint", "hashkv", fmt.Sprintf("--rev=%d", rev)},
		{"get", "", "--prefix", "-w", "json"},
		{"get", "/a", "--rev=5", "-w", "json"},
		{"lease", "list"},
		{"lease", "timetolive", leaseID, "--keys"},
		{"user", "list"},
		{"user", "get", "u1"},
		{"role", "get", "r1"},
		{"auth", "status"},
	}
	for _, c := range cmds {
		out, errOut, code := etcdctl(t, []string{ep}, append([]string{"--user=" + migrationRoot}, c...)...)
		out = endpointRE.ReplaceAllString(remainingRE.ReplaceAllString(termRE.ReplaceAllString(idsRE.ReplaceAllString(out, ""), ""), "remaining(*)"), "<ep>")
		out = attachedRE.ReplaceAllStringFunc(out, sortAttached)
		v[strings.Join(c, " ")] = fmt.Sprintf("exit %d\n%s%s", code, out, lastLine(errOut))
	}
	// u1 may read /a and nothing else, and write nothing.
	for _, c := range [][]string{{"get", "/a"}, {"get", "x"}, {"put", "/a", "z"}} {
		out, errOut, code := etcdctl(t, []string{ep}, append([]string{"--user=" + migrationUser}, c...)...)
		v["u1: "+strings.Join(c, " ")] = fmt.Sprintf("exit %d\n%s%s", code, out, lastLine(errOut))
	}
	return v
}

// compareViews fails t for every command whose output differs.
func compareViews(t *testing.T, what string, want, got migrationView) {
	t.Helper()
	for cmd, w := range want {
		g := got[cmd]
		// etcd 3.5 answers HashKV without hash_revision (the field came in
		// 3.6), so etcdctl prints 0 there; the hash itself must still agree.
		if strings.HasPrefix(cmd, "endpoint hashkv") && strings.HasSuffix(w, ", 0\n") {
			g = hashRevRE.ReplaceAllString(g, ", 0\n")
		}
		if g != w {
			t.Errorf("%s: etcdctl %s:\n got: %s\nwant: %s", what, cmd, g, w)
		}
	}
}

// saveSnapshot runs `etcdctl snapshot save` against ep into dir.
func saveSnapshot(t *testing.T, ep, dir, name string) string {
	t.Helper()
	file := filepath.Join(dir, name)
	if out, errOut, code := etcdctl(t, []string{ep}, "--user="+migrationRoot, "snapshot", "save", file); code != 0 {
		t.Fatalf("snapshot save from %s: exit %d\n%s%s", ep, code, out, errOut)
	}
	return file
}

// restoreCluster restores file into a new n-member cluster of kind (synod
// with `synod snapshot restore`, etcd with `etcdutl snapshot restore`),
// every member from the same file with the same --initial-cluster, as an
// operator does, then starts it and waits until every member is ready.
func restoreCluster(t *testing.T, kind, file string, n int) *Cluster {
	t.Helper()
	dir := t.TempDir()
	ports, err := freePorts(2 * n)
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{t: t, Kind: kind}
	var initial []string
	for i := 0; i < n; i++ {
		m := &Member{Index: i, Name: fmt.Sprintf("r%d", i),
			ClientURL: fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]), PeerURL: fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
			Endpoint: fmt.Sprintf("127.0.0.1:%d", ports[2*i])}
		m.DataDir, m.LogPath = filepath.Join(dir, m.Name+".data"), filepath.Join(dir, m.Name+".log")
		initial = append(initial, m.Name+"="+m.PeerURL)
		c.Members = append(c.Members, m)
	}
	t.Cleanup(func() {
		if t.Failed() {
			c.dumpLogs()
		}
		c.stopAll()
	})
	for _, m := range c.Members {
		cluster := []string{"--name=" + m.Name, "--initial-cluster=" + strings.Join(initial, ","),
			"--initial-cluster-token=migrated", "--initial-advertise-peer-urls=" + m.PeerURL}
		restore := append([]string{"snapshot", "restore", file, "--data-dir=" + m.DataDir}, cluster...)
		serve := append([]string{"--data-dir=" + m.DataDir, "--listen-client-urls=" + m.ClientURL,
			"--advertise-client-urls=" + m.ClientURL, "--listen-peer-urls=" + m.PeerURL}, cluster...)
		switch kind {
		case "synod":
			if out, errOut, code := runSynod(t, restore...); code != 0 {
				t.Fatalf("synod %s: exit %d\n%s%s", strings.Join(restore, " "), code, out, errOut)
			}
			m.Bin, m.Args = synodBin, append([]string{"serve"}, serve...)
		case "etcd":
			if out, code := runEtcdutl(t, restore...); code != 0 {
				t.Fatalf("etcdutl %s: exit %d\n%s", strings.Join(restore, " "), code, out)
			}
			m.Bin, m.Args = etcdBin, serve
		}
	}
	for _, m := range c.Members {
		if err := m.start(); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range c.Members {
		waitReadyAsRoot(t, c, m)
	}
	return c
}

// waitReadyAsRoot waits until m serves a linearizable read to the root user
// (the harness's own readiness probe has no credentials, and auth is on).
// The client is made anew each time: with credentials, clientv3.New
// authenticates at once and fails while the member knows no leader.
func waitReadyAsRoot(t *testing.T, c *Cluster, m *Member) {
	t.Helper()
	err := waitFor(startTimeout, 100*time.Millisecond, func() (bool, error) {
		if !m.Running() {
			return false, fmt.Errorf("process exited: %v", m.exitStatus())
		}
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{m.Endpoint}, Username: "root", Password: "rootpw",
			DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			return false, err
		}
		defer cli.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err = cli.Get(ctx, "e2e-readiness-probe")
		return err == nil, err
	})
	if err != nil {
		t.Fatalf("%s %s (%s) not ready: %v\n--- tail of %s:\n%s", c.Kind, m.Name, m.Endpoint, err, m.LogPath, tail(m.LogText(), 40))
	}
}

// requireEtcdutl skips t, saying why, without the real etcdutl.
func requireEtcdutl(t *testing.T) {
	t.Helper()
	if etcdutlBin == "" {
		t.Skip("etcdutl: " + etcdutlSkip)
	}
}

// runEtcdutl runs the real etcdutl and returns its combined output and exit
// code.
func runEtcdutl(t *testing.T, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, etcdutlBin, args...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("etcdutl %s: %v", strings.Join(args, " "), err)
	}
	return string(out), 0
}
