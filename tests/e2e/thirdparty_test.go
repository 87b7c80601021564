package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Third-party clients of etcd's JSON gateway, as Debian packages them, run
// against one 3-member cluster of each kind: a Python script per client
// (testdata/thirdparty/) drives the client as its users do and prints
// normalized lines; the output must match testdata/thirdparty/<client>.golden,
// recorded from a real etcd 3.7.3 (-update). The etcd run checks the golden
// live whenever the etcd binary is present.

// A thirdPartyClient is one client library and the script that drives it.
type thirdPartyClient struct {
	name     string // the script testdata/thirdparty/<name>.py and its golden
	imports  string // the Python modules the script needs
	packages string // the Debian packages that provide them
	differs  string // a known difference of synod's that the script shows (see runThirdParty)
}

// The clients, in a fixed order: client k starts at revision scriptBase(k).
var thirdPartyClients = []thirdPartyClient{
	{name: "etcd3gw_client", imports: "etcd3gw", packages: "python3-etcd3gw"},
	{name: "tooz_coordinator", imports: "tooz, etcd3gw", packages: "python3-tooz python3-etcd3gw"},
	{name: "patroni_dcs", imports: "patroni.dcs.etcd3", packages: "patroni python3-etcd"},
	{name: "patroni_auth", imports: "patroni.dcs.etcd3", packages: "patroni python3-etcd"},
	{name: "patroni_discovery_auth", imports: "patroni.dcs.etcd3", packages: "patroni python3-etcd"},
}

const (
	thirdPartyDir        = "testdata/thirdparty"
	thirdPartyRunTimeout = 2 * time.Minute // one script; its own waits are bounded far below
	aptInstallTimeout    = 5 * time.Minute
)

const thirdPartyGoldenHeader = "# %s (Debian: %s) against a 3-member etcd v3.7.3 cluster: the output of\n" +
	"# testdata/thirdparty/%s.py, which starts at revision %d.\n" +
	"# Regenerate: go test ./tests/e2e/ -run 'TestThirdPartyGatewayClients/etcd' -update\n"

// TestThirdPartyGatewayClients runs real third-party gateway clients
// against etcd and synod and compares what they observe.
func TestThirdPartyGatewayClients(t *testing.T) {
	py := debianPython(t)
	missing := map[string]string{} // client -> why it cannot run
	checked := map[string]string{} // imports -> why they fail ("" when they work)
	for _, c := range thirdPartyClients {
		why, ok := checked[c.imports]
		if !ok {
			why = pythonModules(py, c)
			checked[c.imports] = why
		}
		if why != "" {
			missing[c.name] = why
		}
	}
	if len(missing) == len(thirdPartyClients) {
		t.Skipf("SKIPPING ALL THIRD-PARTY GATEWAY CLIENTS: %v", missing)
	}
	for _, kind := range kinds() {
		t.Run(kind, func(t *testing.T) {
			checkUpdatable(t, kind)
			cl := startCluster(t, kind, 3)
			cl.WaitConverged(30 * time.Second)
			for k, c := range thirdPartyClients {
				t.Run(c.name, func(t *testing.T) {
					if why := missing[c.name]; why != "" {
						t.Skip(why)
					}
					runThirdParty(t, py, cl, k, c)
				})
			}
		})
	}
}

// runThirdParty runs one client's script from its start revision and
// compares its output with the golden (or rewrites the golden).
func runThirdParty(t *testing.T, py string, cl *Cluster, k int, c thirdPartyClient) {
	base := scriptBase(k)
	if err := padRevision(t, cl, base); err != nil {
		t.Fatal(err)
	}
	out := runPythonScript(t, py, cl, c.name)
	got := fmt.Sprintf(thirdPartyGoldenHeader, c.imports, c.packages, c.name, base) + cl.normalizeEndpoints(out)
	name := filepath.Join("thirdparty", c.name)
	if recordGolden(t, cl.Kind, name, got) {
		return
	}
	if cl.Kind == "synod" && c.differs != "" {
		skipKnownDifference(t, name, got, c.differs)
	}
	compareGolden(t, cl.Kind, name, got)
}

// skipKnownDifference skips the test, naming the difference, when synod's
// output differs from etcd's golden; it returns when they agree (the
// difference is gone: the client's differs note should then be removed).
func skipKnownDifference(t *testing.T, name, got, why string) {
	want, err := os.ReadFile(goldenPath(name))
	if err != nil {
		return // compareGolden reports it
	}
	if string(want) == got {
		t.Logf("synod now answers as etcd does: remove the known difference %q", why)
		return
	}
	t.Logf("synod's output:\n%s", indent(got))
	t.Skipf("KNOWN DIFFERENCE, not compared: %s (the output above vs %s)", why, goldenPath(name))
}

// runPythonScript runs testdata/thirdparty/<name>.py with the members'
// client URLs and returns its standard output; it fails the test, with the
// script's standard error, if the script fails or overruns.
func runPythonScript(t *testing.T, py string, cl *Cluster, name string) string {
	t.Helper()
	script := filepath.Join(thirdPartyDir, name+".py")
	// Read the scripts (they import each other) so that go test's cache depends on them.
	scripts, err := filepath.Glob(filepath.Join(thirdPartyDir, "*.py"))
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no scripts in %s (%v)", thirdPartyDir, err)
	}
	for _, f := range scripts {
		if _, err := os.ReadFile(f); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), thirdPartyRunTimeout)
	defer cancel()
	args := []string{script}
	for _, m := range cl.Members {
		args = append(args, m.ClientURL)
	}
	cmd := exec.CommandContext(ctx, py, args...)
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1", "PYTHONPATH=")
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	start := time.Now()
	err = cmd.Run()
	t.Logf("%s against %s: %v", name, cl.Kind, time.Since(start).Round(time.Millisecond))
	if ctx.Err() != nil {
		t.Fatalf("%s did not finish within %v\nstdout:\n%s\nstderr:\n%s", script, thirdPartyRunTimeout, o.String(), tail(e.String(), 60))
	}
	if err != nil {
		t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", script, err, o.String(), tail(e.String(), 60))
	}
	return o.String()
}

// debianPython is the interpreter Debian's python3-* packages install into
// (a python3 earlier on PATH, such as a pyenv shim, does not see them).
func debianPython(t *testing.T) string {
	const p = "/usr/bin/python3"
	if isExecutable(p) {
		return p
	}
	if lp, err := exec.LookPath("python3"); err == nil {
		return lp
	}
	t.Skip("SKIPPING ALL THIRD-PARTY GATEWAY CLIENTS: no python3 (/usr/bin/python3 or on PATH); install Debian's python3")
	return ""
}

// pythonModules returns "" when py can import the client's modules,
// installing its Debian packages first when they are missing and this
// process may (root, apt-get present); otherwise a loud reason to skip it.
func pythonModules(py string, c thirdPartyClient) string {
	err := importModules(py, c.imports)
	if err == nil {
		return ""
	}
	why := aptInstall(c.packages)
	if err = importModules(py, c.imports); err == nil {
		return ""
	}
	return fmt.Sprintf("SKIPPING THIRD-PARTY CLIENT %s: %s cannot import %s (%v); installing Debian packages %q: %s",
		c.name, py, c.imports, err, c.packages, why)
}

// importModules runs `py -c 'import mods'`.
func importModules(py, mods string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, py, "-c", "import "+mods).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(tail(string(out), 1)))
	}
	return nil
}

// aptInstall installs Debian packages when running as root with apt-get,
// and says what happened.
func aptInstall(packages string) string {
	if os.Geteuid() != 0 {
		return "not attempted: not running as root"
	}
	aptGet, err := exec.LookPath("apt-get")
	if err != nil {
		return "not attempted: no apt-get"
	}
	ctx, cancel := context.WithTimeout(context.Background(), aptInstallTimeout)
	defer cancel()
	args := append([]string{"install", "-y", "--no-install-recommends"}, strings.Fields(packages)...)
	cmd := exec.CommandContext(ctx, aptGet, args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Sprintf("apt-get install did not finish within %v", aptInstallTimeout)
	case err != nil:
		return fmt.Sprintf("apt-get install failed (%v): %s", err, strings.TrimSpace(tail(string(out), 5)))
	}
	return "apt-get install succeeded"
}
