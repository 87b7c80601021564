package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"
)

// consulTemplateModule is the consul-template built for the test, into a
// temporary GOBIN (it stays out of synod's go.mod).
const consulTemplateModule = "github.com/hashicorp/consul-template@v0.41.1"

// installConsulTemplate builds consul-template with `go install` into a
// temporary directory and returns the binary, or "" and a loud reason to
// skip (no Go toolchain, the module proxy out of reach, a build failure).
func installConsulTemplate(t *testing.T) (bin, why string) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", "SKIPPING CONSUL-TEMPLATE: no go on PATH to build " + consulTemplateModule
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "install", consulTemplateModule)
	cmd.Dir = dir // outside synod's module: its go.mod is not consulted
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=", "GOWORK=off")
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Sprintf("SKIPPING CONSUL-TEMPLATE: go install %s failed (%v): %s",
			consulTemplateModule, err, strings.TrimSpace(tail(string(out), 5)))
	}
	t.Logf("go install %s: %v", consulTemplateModule, time.Since(start).Round(time.Millisecond))
	return filepath.Join(dir, "consul-template"), ""
}

// consulTemplateText uses consul-template's service function with its
// health filters ("|any": every instance; "|passing,warning": filtered by
// consul-template; none: passing only, which it asks of the server with
// ?passing) and its key function.
const consulTemplateText = `{{ range service "web|any" }}any {{ .ID }} {{ .Address }}:{{ .Port }} {{ .Status }}
{{ end }}{{ range service "web|passing,warning" }}healthy {{ .ID }}
{{ end }}{{ range service "web" }}passing {{ .ID }}
{{ end }}db={{ key "app/db" }}
`

// testConsulTemplate runs the real consul-template binary against member
// 2 (through a proxy that counts its requests) and writes the catalog and
// the key through member 0: the first rendering must show three instances
// of web (passing, warning, critical) filtered by health and the key's
// value; once rendered, consul-template must sit in blocking queries (a
// handful of requests in 2 s, where queries that returned at once would
// make it poll ten times a second per dependency); after a check flips and
// the key changes it must render again within seconds, far below its 1 min
// blocking wait: a blocking query on one member wakes on a write through
// another.
func testConsulTemplate(t *testing.T, cc *consulCluster, bin string) {
	agent, kv := cc.clients[0].Agent(), cc.clients[0].KV()
	statuses := map[string]string{"tpl-1": consul.HealthPassing, "tpl-2": consul.HealthWarning, "tpl-3": consul.HealthCritical}
	for _, id := range []string{"tpl-1", "tpl-2", "tpl-3"} {
		if err := agent.ServiceRegister(ttlService(id)); err != nil {
			t.Fatal(err)
		}
		if err := agent.UpdateTTL(id+"-ttl", "", statuses[id]); err != nil {
			t.Fatal(err)
		}
		defer agent.ServiceDeregister(id)
	}
	if _, err := kv.Put(&consul.KVPair{Key: "app/db", Value: []byte("postgres://a")}, nil); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tpl, dest := filepath.Join(dir, "in.tpl"), filepath.Join(dir, "out.txt")
	if err := os.WriteFile(tpl, []byte(consulTemplateText), 0o644); err != nil {
		t.Fatal(err)
	}
	proxy, requests := countingProxy(t, cc.urls[2])
	var logs lockedBuffer
	cmd := exec.Command(bin, "-consul-addr", strings.TrimPrefix(proxy, "http://"),
		"-template", tpl+":"+dest, "-log-level", "info")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	want := "any tpl-1 10.0.0.1:8080 passing\nany tpl-2 10.0.0.1:8080 warning\nany tpl-3 10.0.0.1:8080 critical\n" +
		"healthy tpl-1\nhealthy tpl-2\npassing tpl-1\ndb=postgres://a\n"
	waitRendered(t, dest, want, &logs)
	assertBlocking(t, requests)

	start := time.Now()
	if err := agent.UpdateTTL("tpl-1-ttl", "", consul.HealthCritical); err != nil {
		t.Fatal(err)
	}
	if err := agent.UpdateTTL("tpl-3-ttl", "", consul.HealthPassing); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(&consul.KVPair{Key: "app/db", Value: []byte("postgres://b")}, nil); err != nil {
		t.Fatal(err)
	}
	want = "any tpl-1 10.0.0.1:8080 critical\nany tpl-2 10.0.0.1:8080 warning\nany tpl-3 10.0.0.1:8080 passing\n" +
		"healthy tpl-2\nhealthy tpl-3\npassing tpl-3\ndb=postgres://b\n"
	waitRendered(t, dest, want, &logs)
	t.Logf("consul-template rendered the change %v after the writes", time.Since(start).Round(time.Millisecond))
}

// waitRendered waits until consul-template's output file holds want. The
// bound is far below consul-template's blocking wait (1 min): a rendering
// that came only when a query's wait ran out would miss it.
func waitRendered(t *testing.T, dest, want string, logs *lockedBuffer) {
	t.Helper()
	var got string
	err := waitFor(15*time.Second, 50*time.Millisecond, func() (bool, error) {
		b, err := os.ReadFile(dest)
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		got = string(b)
		return got == want, err
	})
	if err != nil {
		t.Fatalf("consul-template's output: %v\ngot:\n%s\nwant:\n%s\nits log:\n%s", err, got, want, tail(logs.String(), 40))
	}
}

// consulTemplateQueries is how many queries consulTemplateText makes: three
// service queries (each filter is a dependency of its own) and a key.
const consulTemplateQueries = 4

// requestCounter counts the requests a proxy was sent and those it holds.
type requestCounter struct{ all, open atomic.Int64 }

// countingProxy is a reverse proxy to the member's Consul API that counts
// the requests it is sent; it returns its URL and the counter.
func countingProxy(t *testing.T, target string) (string, *requestCounter) {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0) // consul-template's held queries are cut when it is killed
	var c requestCounter
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.all.Add(1)
		c.open.Add(1)
		defer c.open.Add(-1)
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { // after consul-template is killed (defers run before cleanups)
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv.URL, &c
}

// assertBlocking checks that consul-template, its template rendered and
// nothing changing, holds one query open per dependency instead of polling.
func assertBlocking(t *testing.T, c *requestCounter) {
	t.Helper()
	err := waitFor(5*time.Second, 10*time.Millisecond, func() (bool, error) {
		return c.open.Load() >= consulTemplateQueries, nil
	})
	if err != nil {
		t.Fatalf("consul-template never held its %d blocking queries open at once (%d open, %d sent): %v",
			consulTemplateQueries, c.open.Load(), c.all.Load(), err)
	}
	before := c.all.Load()
	time.Sleep(2 * time.Second) // the window a request rate is measured over, not a wait for luck
	if n := c.all.Load() - before; n > 4 {
		t.Fatalf("consul-template sent %d requests in 2 s with nothing changing: its blocking queries return at once", n)
	} else {
		t.Logf("consul-template sent %d requests in 2 s with nothing changing, %d queries held open (%d in all)", n, c.open.Load(), c.all.Load())
	}
}
