package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMigrateEtcdToSynod moves a real etcd 3.7.3 cluster to synod as
// docs/migration.md tells an operator to: load a history into etcd, stop
// writing, `etcdctl snapshot save`, `synod snapshot restore` of the same
// file on each of three members with the same --initial-cluster, start
// them, and verify: every member shows what etcd showed (hashkv at the same
// revision, keys and revisions, a read at an old revision, the lease with
// its keys, users, roles, auth status, and the permissions enforced).
// With -update it also records the snapshot and etcd's view of it into
// etcdsnap/testdata, for the importer's tests that run without etcd.
func TestMigrateEtcdToSynod(t *testing.T) {
	requireKind(t, "etcd")
	requireKind(t, "synod")
	src := migrationSource(t, "etcd", 1)
	leaseID, rev, want, file := src.leaseID, src.rev, src.want, src.file
	if *update {
		recordEtcdSnapshot(t, src.c.Members[0].Endpoint, file, leaseID, rev, src.compactRev)
	}
	src.c.Stop()

	dst := restoreCluster(t, "synod", file, 3)
	for _, m := range dst.Members {
		compareViews(t, "synod member "+m.Name, want, observeMigrated(t, m.Endpoint, leaseID, rev))
	}
	// The restored cluster takes writes, and a restarted member comes back
	// with them.
	if out, errOut, code := etcdctl(t, dst.Endpoints(), "--user="+migrationRoot, "put", "after", "migration"); code != 0 {
		t.Fatalf("put on the migrated cluster: exit %d\n%s%s", code, out, errOut)
	}
	dst.StopMember(1)
	if err := dst.Members[1].start(); err != nil {
		t.Fatal(err)
	}
	waitReadyAsRoot(t, dst, dst.Members[1])
	if out, _, code := etcdctl(t, []string{dst.Members[1].Endpoint}, "--user="+migrationRoot, "get", "after", "--print-value-only"); code != 0 || out != "migration\n" {
		t.Errorf("restarted member: get after = %q (exit %d)", out, code)
	}
}

// TestMigrateSynodToEtcd moves a synod cluster back to etcd: the same
// history loaded into synod, `etcdctl snapshot save` from synod,
// `etcdutl snapshot status` reads the file, `etcdutl snapshot restore` on
// three members and a real etcd cluster serve it, and every etcd member
// shows what synod showed. The same file
// restored into synod again shows it too (a round trip).
func TestMigrateSynodToEtcd(t *testing.T) {
	requireKind(t, "synod")
	requireKind(t, "etcd")
	requireEtcdutl(t)
	src := migrationSource(t, "synod", 3)
	leaseID, rev, want, file := src.leaseID, src.rev, src.want, src.file
	src.c.Stop()

	out, code := runEtcdutl(t, "snapshot", "status", file, "-w", "json")
	var st struct {
		Revision int64  `json:"revision"`
		TotalKey int    `json:"totalKey"`
		Version  string `json:"version"`
	}
	if code != 0 || json.Unmarshal([]byte(lastLine(out)), &st) != nil || st.Revision != rev || st.TotalKey != 5 || st.Version != "3.7.0" {
		t.Fatalf("etcdutl snapshot status: exit %d, %+v\n%s", code, st, out)
	}
	etcd := restoreCluster(t, "etcd", file, 3)
	for _, m := range etcd.Members {
		compareViews(t, "etcd member "+m.Name+" restored from synod", want, observeMigrated(t, m.Endpoint, leaseID, rev))
	}
	back := restoreCluster(t, "synod", file, 1)
	compareViews(t, "synod restored from its own etcd-format snapshot", want, observeMigrated(t, back.Members[0].Endpoint, leaseID, rev))
}

// sourceCluster is a cluster loaded with the migration history, what
// etcdctl showed of it and the snapshot saved from it.
type sourceCluster struct {
	c          *Cluster
	leaseID    string
	compactRev int
	rev        int64
	want       migrationView
	file       string
}

// migrationSource starts an n-member cluster of kind, loads the history,
// observes it and saves a snapshot from its first member.
func migrationSource(t *testing.T, kind string, n int) sourceCluster {
	t.Helper()
	s := sourceCluster{c: startCluster(t, kind, n)}
	ep := s.c.Members[0].Endpoint
	s.leaseID, s.compactRev = loadMigrationHistory(t, ep)
	s.rev = headerRevision(t, ep)
	s.want = observeMigrated(t, ep, s.leaseID, s.rev)
	s.file = saveSnapshot(t, ep, t.TempDir(), kind+".db")
	return s
}

// headerRevision is the current revision of the member at ep.
func headerRevision(t *testing.T, ep string) int64 {
	t.Helper()
	out, errOut, code := etcdctl(t, []string{ep}, "--user="+migrationRoot, "get", "none", "-w", "json")
	var r struct {
		Header struct {
			Revision int64 `json:"revision"`
		} `json:"header"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil {
		t.Fatalf("get: exit %d\n%s%s", code, out, errOut)
	}
	return r.Header.Revision
}

// etcdSnapshotTestdata is where -update records a real etcd's snapshot and
// its view of it, for etcdsnap's and server's tests: etcd-<version>, the
// version the etcd binary reports (run with SYNOD_ETCD_BIN naming an etcd
// 3.5 or 3.6 to record theirs).
func etcdSnapshotTestdata(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(etcdBin, "--version").Output()
	_, v, ok := strings.Cut(strings.SplitN(string(out), "\n", 2)[0], "etcd Version: ")
	if err != nil || !ok || v == "" {
		t.Fatalf("etcd --version: %q %v", out, err)
	}
	return "etcdsnap/testdata/etcd-" + strings.TrimSpace(v)
}

// recordEtcdSnapshot copies file to etcdsnap/testdata and writes beside it
// what the real etcd showed (etcdctl -w json): the keys, the hash at rev,
// the lease, users, roles, auth status, and the compaction revision.
func recordEtcdSnapshot(t *testing.T, ep, file, leaseID string, rev int64, compactRev int) {
	t.Helper()
	raw := func(args ...string) json.RawMessage {
		out, errOut, code := etcdctl(t, []string{ep}, append([]string{"--user=" + migrationRoot, "-w", "json"}, args...)...)
		if code != 0 || !json.Valid([]byte(out)) {
			t.Fatalf("etcdctl %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		return json.RawMessage(out)
	}
	rec := map[string]any{
		"compact_revision": compactRev,
		"get":              raw("get", "", "--prefix"),
		"hashkv":           raw("endpoint", "hashkv", fmt.Sprintf("--rev=%d", rev)),
		"timetolive":       raw("lease", "timetolive", leaseID, "--keys"),
		"users":            raw("user", "list"),
		"roles":            raw("role", "list"),
		"role_r1":          raw("role", "get", "r1"),
		"auth":             raw("auth", "status"),
	}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(moduleRoot, etcdSnapshotTestdata(t))
	if err := os.WriteFile(base+".db", data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(base+".json", append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %s.db and %s.json", base, base)
}
