package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// promUpdate is one line of tests/consulsd's output: target groups found by
// Prometheus' own Consul service discovery for a job.
type promUpdate struct {
	Job    string `json:"job"`
	Groups []struct {
		Source  string              `json:"source"`
		Targets []map[string]string `json:"targets"`
		Labels  map[string]string   `json:"labels"`
	} `json:"groups"`
}

// testPrometheusConsulSD runs Prometheus' consul_sd_configs code (built from
// tests/consulsd, a module of its own) on the YAML a user would write,
// against one member's Consul API, and waits until it has found both
// instances of "web" (by name) and web-a alone (by its tag "primary",
// which Prometheus finds through /v1/catalog/services), with Consul's
// health as a label.
func testPrometheusConsulSD(t *testing.T, cc *consulCluster) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "consulsd")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = filepath.Join(moduleRoot, "tests", "consulsd")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building tests/consulsd (Prometheus' Consul discovery): %v\n%s", err, out)
	}
	server := strings.TrimPrefix(cc.urls[2], "http://")
	yml := fmt.Sprintf(`scrape_configs:
  - job_name: web
    consul_sd_configs:
      - server: %[1]s
        services: [web]
  - job_name: primary
    consul_sd_configs:
      - server: %[1]s
        tags: [primary]
        refresh_interval: 1s
`, server)
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+cfg, "--timeout=30s")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "consulsd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("consulsd log:\n%s", tail(string(b), 40))
		}
	}()
	found := map[string]map[string]string{} // job/service ID -> labels of its target
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var u promUpdate
		if err := json.Unmarshal(sc.Bytes(), &u); err != nil {
			t.Fatalf("consulsd printed %q: %v", sc.Text(), err)
		}
		for _, g := range u.Groups {
			for _, tg := range g.Targets {
				labels := map[string]string{}
				for k, v := range g.Labels {
					labels[k] = v
				}
				for k, v := range tg {
					labels[k] = v
				}
				found[u.Job+"/"+labels["__meta_consul_service_id"]] = labels
			}
		}
		if len(found) == 3 && found["web/web-a"] != nil && found["web/web-b"] != nil && found["primary/web-a"] != nil {
			break
		}
	}
	if len(found) != 3 || found["primary/web-a"] == nil {
		t.Fatalf("Prometheus found %v; want web-a and web-b for job web, web-a alone for job primary", keysOf(found))
	}
	a := found["web/web-a"]
	for k, want := range map[string]string{"__address__": "10.0.0.1:8080", "__meta_consul_node": "m0",
		"__meta_consul_service": "web", "__meta_consul_health": "passing", "__meta_consul_dc": "dc1",
		"__meta_consul_address": "127.0.0.1", "__meta_consul_tags": ",primary,v1,"} {
		if a[k] != want {
			t.Errorf("web-a's %s = %q, want %q (all: %v)", k, a[k], want, a)
		}
	}
}

func keysOf[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// testConsulPythonClient drives the members' Consul API with python-consul2
// (Debian's python3-consul2, installed when missing and running as root,
// else skipped loudly) through testdata/consul_python/client.py, which
// checks each step itself: registrations on two members read from the
// third, passing-only health, a blocking query woken by a TTL pass and one
// that times out, catalog, agent and status reads, a 400, deregistrations.
func testConsulPythonClient(t *testing.T, cc *consulCluster) {
	py := debianPython(t)
	if why := pythonModules(py, thirdPartyClient{name: "python-consul2", imports: "consul", packages: "python3-consul2"}); why != "" {
		t.Skip(why)
	}
	script := filepath.Join(moduleRoot, "tests", "e2e", "testdata", "consul_python", "client.py")
	args := []string{script}
	for _, u := range cc.urls {
		args = append(args, strings.TrimPrefix(u, "http://"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, py, args...).CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 3 {
		t.Skipf("SKIPPING python-consul2: %s", strings.TrimSpace(string(out)))
	}
	if err != nil {
		t.Fatalf("client.py: %v\n%s", err, out)
	}
	t.Logf("client.py:\n%s", out)
}
