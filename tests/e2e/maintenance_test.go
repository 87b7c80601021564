package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// maintenanceFlags give the maintenance clusters a small quota, so NOSPACE is
// reached in a few hundred writes, and a short raft log.
var maintenanceFlags = []string{"--quota-backend-bytes=8388608", "--snapshot-count=50"}

// maintScript records a normalized transcript of etcdctl commands.
type maintScript struct {
	t     *testing.T
	cl    *Cluster
	out   strings.Builder
	roles map[int]string // member index -> role label (leader, target, ...) used instead of its name
}

var (
	tookRe     = regexp.MustCompile(`took \d+(\.\d+)?(ns|µs|ms|s)`)
	spacesRe   = regexp.MustCompile(`[ \t]+`)
	memberIDRe = regexp.MustCompile(`memberID:(\d+)`)
	memberRe   = regexp.MustCompile(`memberID:<m\d+>`)
)

// normalize replaces what differs between two clusters: endpoints, member
// IDs (by member name), durations, and prototext's randomized spacing.
func (s *maintScript) normalize(text string) string {
	for i, role := range s.roles {
		m := s.cl.Members[i]
		for _, old := range []string{m.ClientURL, m.Endpoint, fmt.Sprintf("%x", m.ID)} {
			text = strings.ReplaceAll(text, old, "<"+role+">")
		}
	}
	text = s.cl.normalizeEndpoints(text)
	text = tookRe.ReplaceAllString(text, "took <d>")
	text = memberIDRe.ReplaceAllStringFunc(text, func(m string) string {
		id, _ := strconv.ParseUint(strings.TrimPrefix(m, "memberID:"), 10, 64)
		if i := s.cl.memberByID(id); i >= 0 {
			return "memberID:<" + s.cl.Members[i].Name + ">"
		}
		return m
	})
	for _, m := range s.cl.Members {
		text = strings.ReplaceAll(text, fmt.Sprintf("%x", m.ID), "<"+m.Name+">")
	}
	return spacesRe.ReplaceAllString(text, " ")
}

// run runs etcdctl against the given members (all if none) and appends the
// normalized command, output and exit code to the transcript. With sorted,
// stdout lines are sorted and deduplicated once alarm member IDs are
// normalized away: etcd raises NOSPACE on every member over the quota (synod:
// on the member that refused the write), and defrag --cluster visits members
// in no fixed order.
func (s *maintScript) run(members []int, sorted bool, args ...string) (string, int) {
	s.t.Helper()
	var eps []string
	target := ""
	for _, i := range members {
		eps = append(eps, s.cl.Members[i].Endpoint)
		target = "[" + s.cl.Members[i].Name + "] "
		if role, ok := s.roles[i]; ok {
			target = "[" + role + "] "
		}
	}
	if len(members) == 0 {
		eps = s.cl.Endpoints()
	}
	stdout, stderr, code := etcdctl(s.t, eps, args...)
	norm := s.normalize(stdout)
	if sorted {
		norm = sortedSet(memberRe.ReplaceAllString(norm, "memberID:<member>"))
	}
	fmt.Fprintf(&s.out, "=== %s%s\n", target, s.normalize(strings.Join(args, " ")))
	for _, l := range lines(norm) {
		fmt.Fprintf(&s.out, "1| %s\n", l)
	}
	for _, l := range lines(s.normalize(normalizeStderr(stderr))) {
		fmt.Fprintf(&s.out, "2| %s\n", l)
	}
	fmt.Fprintf(&s.out, "exit %d\n", code)
	return stdout, code
}

// sortedSet sorts and deduplicates lines.
func sortedSet(s string) string {
	seen := map[string]bool{}
	var out []string
	for _, l := range lines(s) {
		if l = strings.TrimSpace(l); !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n") + "\n"
}

// TestMaintenanceEtcdctl runs the same maintenance session with the real
// etcdctl against etcd and synod and compares the normalized transcripts
// (testdata/maintenance.golden, recorded from etcd with -update): endpoint
// status and hashkv, alarm list and disarm around a NOSPACE alarm, compaction
// and defrag, snapshot save, move-leader.
func TestMaintenanceEtcdctl(t *testing.T) {
	for _, kind := range kinds() {
		t.Run(kind, func(t *testing.T) {
			checkUpdatable(t, kind)
			cl := startCluster(t, kind, 3, maintenanceFlags...)
			cl.WaitLeader(30 * time.Second)
			got := runMaintenanceScript(t, cl)
			if recordGolden(t, kind, "maintenance", got) {
				return
			}
			compareGolden(t, kind, "maintenance", got)
		})
	}
}

func runMaintenanceScript(t *testing.T, cl *Cluster) string {
	s := &maintScript{t: t, cl: cl}
	s.out.WriteString("# etcdctl maintenance session recorded from a 3-member etcd v3.7.3 cluster (" +
		strings.Join(maintenanceFlags, " ") + ").\n# Regenerate: go test ./tests/e2e/ -run 'TestMaintenanceEtcdctl/etcd' -update\n" +
		"# Normalized: endpoints and member IDs (<mN>), durations, runs of spaces; alarm lines deduplicated.\n")
	for i := 0; i < 5; i++ {
		s.run(nil, false, "put", fmt.Sprintf("m/%d", i), fmt.Sprintf("v%d", i))
	}
	s.run(nil, false, "del", "m/3")
	s.run(nil, false, "compact", "4")
	cl.WaitConverged(30 * time.Second)
	s.run(nil, false, "endpoint", "hashkv")
	s.run(nil, false, "endpoint", "hashkv", "--rev=6")
	out, _ := s.run(nil, false, "endpoint", "hashkv", "-w", "table")
	checkTable(t, "endpoint hashkv -w table", out, []string{"ENDPOINT", "HASH", "HASH REVISION"}, 3)
	s.run(nil, false, "alarm", "list")

	fillToNoSpace(t, cl)
	s.run(nil, false, "put", "after-nospace", "v")
	s.run(nil, true, "alarm", "list")
	checkStatusErrors(t, cl, "alarm:NOSPACE")
	s.run(nil, false, "get", "m/", "--prefix", "--keys-only")
	s.run(nil, false, "del", "m/4")
	compactAll(t, cl)
	out, _ = s.run(nil, true, "defrag", "--cluster")
	if strings.Count(out, "Finished defragmenting etcd member[") != 3 {
		t.Errorf("defrag --cluster: %q", out)
	}
	waitInUseBelow(t, cl, 8388608)
	s.run(nil, true, "alarm", "disarm")
	s.run(nil, false, "alarm", "list")
	s.run(nil, false, "put", "after-disarm", "v")
	checkStatusErrors(t, cl, "")

	waitStorageVersion(t, cl.Members[0])
	file := filepath.Join(t.TempDir(), "snap.db")
	out, _ = s.run([]int{0}, false, "snapshot", "save", file)
	out = strings.ReplaceAll(out, file, "<file>")
	if fi, err := os.Stat(file); err != nil || fi.Size()%512 != 32 {
		t.Errorf("snapshot file: %v %v", fi, err)
	}

	lead := cl.WaitLeader(30 * time.Second)
	target := (lead + 1) % 3
	follower := (lead + 2) % 3
	s.roles = map[int]string{lead: "leader", target: "target", follower: "follower"}
	s.run([]int{follower}, false, "move-leader", fmt.Sprintf("%x", cl.Members[target].ID))
	s.run(nil, false, "move-leader", fmt.Sprintf("%x", cl.Members[target].ID))
	if got := cl.WaitLeader(30 * time.Second); got != target {
		t.Errorf("after move-leader the leader is %s, want %s", cl.Members[got].Name, cl.Members[target].Name)
	}
	s.run(nil, false, "move-leader", "1234")
	return strings.ReplaceAll(s.out.String(), file, "<file>")
}

// fillToNoSpace writes 16 KiB values through member 0 until the quota is
// hit. Each value is random: a repeated byte compresses to almost nothing
// in synod's MinLZ tables, which left the space in use hovering near the
// quota (the current WAL's size) and the alarm to the timing of a sample.
func fillToNoSpace(t *testing.T, cl *Cluster) {
	t.Helper()
	cli := newClient(t, cl.Members[0].Endpoint)
	rng := rand.New(rand.NewPCG(1, 1))
	raw := make([]byte, 16<<10)
	for i := 0; i < 5000; i++ {
		for j := range raw {
			raw[j] = byte(rng.Uint32())
		}
		val := string(raw)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := cli.Put(ctx, fmt.Sprintf("fill/%d", i%8), val)
		cancel()
		if errors.Is(err, rpctypes.ErrNoSpace) {
			return
		}
		if err != nil {
			t.Fatalf("%s: fill put %d: %v", cl.Kind, i, err)
		}
	}
	t.Fatalf("%s: 5000 puts of 16 KiB never hit the quota", cl.Kind)
}

// compactAll compacts (physically) at the current revision.
func compactAll(t *testing.T, cl *Cluster) {
	t.Helper()
	cli := newClient(t, cl.Endpoints()...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g, err := cli.Get(ctx, "m/0")
	if err == nil {
		_, err = cli.Compact(ctx, g.Header.Revision, clientv3.WithCompactPhysical())
	}
	if err != nil {
		t.Fatalf("%s: compact: %v", cl.Kind, err)
	}
}

// checkStatusErrors checks the ERRORS column of `endpoint status -w table`
// on every member: it contains want, or is empty if want is "".
func checkStatusErrors(t *testing.T, cl *Cluster, want string) {
	t.Helper()
	header := []string{"ENDPOINT", "ID", "VERSION", "STORAGE VERSION", "DB SIZE", "IN USE", "PERCENTAGE NOT IN USE", "QUOTA",
		"IS LEADER", "IS LEARNER", "RAFT TERM", "RAFT INDEX", "RAFT APPLIED INDEX", "ERRORS", "DOWNGRADE TARGET VERSION", "DOWNGRADE ENABLED"}
	err := waitFor(10*time.Second, 100*time.Millisecond, func() (bool, error) {
		stdout, stderr, code := etcdctl(t, cl.Endpoints(), "endpoint", "status", "-w", "table")
		if code != 0 {
			return false, fmt.Errorf("exit %d: %s", code, stderr)
		}
		checkTable(t, "endpoint status -w table", stdout, header, 3)
		for _, l := range lines(stdout) {
			if !strings.HasPrefix(l, "│") || strings.Contains(l, "ENDPOINT") {
				continue
			}
			cells := strings.Split(strings.Trim(l, "│"), "│")
			errs := strings.TrimSpace(cells[13])
			if quota := strings.TrimSpace(cells[7]); quota != "8.4 MB" {
				t.Errorf("%s: status quota %q, want 8.4 MB", cl.Kind, quota)
			}
			if (want == "" && errs != "") || !strings.Contains(errs, want) {
				return false, fmt.Errorf("ERRORS column %q, want %q\n%s", errs, want, stdout)
			}
		}
		return true, nil
	})
	if err != nil {
		t.Errorf("%s: endpoint status: %v", cl.Kind, err)
	}
}

// waitInUseBelow waits until every member reports a size in use below quota
// (what an operator checks before disarming NOSPACE).
// waitStorageVersion waits until m reports the storage version of its own
// release (3.7.0 for a 3.7.x server). etcd writes that version a few
// seconds after start (its version monitor), and until then its snapshots
// carry none and etcdctl prints no "Server version" line; on a loaded
// machine the script can reach its snapshot before that. Before the write,
// etcd's Status already reports a version detected from other keys (an
// older one), so a non-empty field is not enough.
func waitStorageVersion(t *testing.T, m *Member) {
	t.Helper()
	err := waitFor(30*time.Second, 100*time.Millisecond, func() (bool, error) {
		st, err := m.Status(t, 5*time.Second)
		if err != nil {
			return false, err
		}
		release := strings.Join(strings.SplitN(st.Version, ".", 3)[:2], ".") + ".0"
		return st.StorageVersion == release, fmt.Errorf("%s: storage version %q, want %q", m.Name, st.StorageVersion, release)
	})
	if err != nil {
		t.Fatalf("storage version: %v", err)
	}
}

func waitInUseBelow(t *testing.T, cl *Cluster, quota int64) {
	t.Helper()
	err := waitFor(30*time.Second, 100*time.Millisecond, func() (bool, error) {
		for _, m := range cl.Members {
			st, err := m.Status(t, 5*time.Second)
			if err != nil {
				return false, err
			}
			if st.DbSizeInUse >= quota {
				return false, fmt.Errorf("%s: %d bytes in use", m.Name, st.DbSizeInUse)
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("%s: size in use after compaction and defrag: %v", cl.Kind, err)
	}
}
