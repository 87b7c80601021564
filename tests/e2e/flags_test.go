package e2e

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// synod serve accepts every flag of etcd 3.7.3 (docs/configuration.md):
// its flag list is compared with `etcd --help`'s, live when the etcd binary
// is there and always with testdata/etcd-flags.golden, recorded from it
// (-run TestServeFlagsMatchEtcd -update re-records it).

const etcdFlagsGolden = "testdata/etcd-flags.golden"

// Flags etcd 3.7.3's --help lists but its flag set does not define (it
// answers "flag provided but not defined"): synod refuses them as well.
var etcdHelpOnly = []string{"discovery", "discovery-proxy"}

// Flags of synod's own, beyond etcd's (docs/configuration.md), and the
// removed flags etcd still accepts and ignores without listing them.
var (
	synodOnlyFlags  = []string{"audit-log", "audit-log-max-backups", "audit-log-max-size", "consul-datacenter", "consul-listen-url", "dns-allow-stale", "dns-domain", "dns-enable-truncate", "dns-listen-addr", "dns-node-ttl", "dns-only-passing", "dns-service-ttl", "dns-udp-answer-limit", "max-client-connections", "max-watchers-per-stream", "timer-slack"}
	etcdHiddenFlags = []string{"cluster-active-size", "cluster-remove-delay", "cluster-sync-interval", "config", "force",
		"max-result-buffer", "max-retry-attempts", "peer-election-timeout", "peer-heartbeat-interval", "retry-interval", "snapshot", "v", "vv"}
)

var helpFlagLine = regexp.MustCompile(`^\s+(?:etcd )?--?([a-z0-9][a-z0-9.-]*)\b`)

// helpFlags runs bin args (a --help) and returns the flag names it lists.
func helpFlags(t *testing.T, bin string, args ...string) []string {
	t.Helper()
	out, _ := exec.Command(bin, args...).CombinedOutput() // help may exit 0 or 2
	seen := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if m := helpFlagLine.FindStringSubmatch(line); m != nil && m[1] != "h" && m[1] != "help" && m[1] != "version" {
			seen[m[1]] = true
		}
	}
	var names []string
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) < 20 {
		t.Fatalf("%s %v listed only %d flags:\n%s", bin, args, len(names), out)
	}
	return names
}

func TestServeFlagsMatchEtcd(t *testing.T) {
	requireKind(t, "synod")
	var want []string
	if etcdBin != "" {
		want = helpFlags(t, etcdBin, "--help")
		if *update {
			body := "# Flags listed by `etcd --help` (etcd 3.7.3). Regenerate: go test ./tests/e2e/ -run TestServeFlagsMatchEtcd -update\n" + strings.Join(want, "\n") + "\n"
			if err := os.WriteFile(etcdFlagsGolden, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for _, name := range etcdHelpOnly {
			out, _ := exec.Command(etcdBin, "--"+name+"=x").CombinedOutput()
			if !strings.Contains(string(out), "flag provided but not defined: -"+name) {
				t.Errorf("etcd --%s: expected etcd to refuse the flag it lists, got:\n%s", name, firstLines(string(out), 3))
			}
		}
	} else {
		t.Logf("comparing with %s only: %s", etcdFlagsGolden, etcdSkip)
	}
	golden := readGoldenList(t, etcdFlagsGolden)
	if want != nil && !slices.Equal(want, golden) {
		t.Fatalf("etcd --help lists %d flags, %s has %d: re-record with -update\nlive:   %v\ngolden: %v", len(want), etcdFlagsGolden, len(golden), want, golden)
	}
	got := helpFlags(t, synodBin, "serve", "--help")
	has := func(list []string, n string) bool { return slices.Contains(list, n) }
	for _, n := range golden {
		switch {
		case has(etcdHelpOnly, n):
			if has(got, n) {
				t.Errorf("synod serve defines --%s, which etcd 3.7.3 lists but refuses", n)
			}
		case !has(got, n):
			t.Errorf("etcd flag --%s is missing from synod serve", n)
		}
	}
	for _, n := range got {
		if !has(golden, n) && !has(synodOnlyFlags, n) && !has(etcdHiddenFlags, n) && n != "config-file" {
			t.Errorf("synod serve has --%s, which etcd does not: add it to synodOnlyFlags and docs/configuration.md, or remove it", n)
		}
	}
}

func readGoldenList(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (record it with -update and the etcd binary)", err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}
