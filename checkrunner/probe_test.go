package checkrunner

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/synod-db/synod/catalog"
	"github.com/synod-db/synod/healthcheck"
)

func httpCheck(url string, d catalog.CheckDefinition) healthcheck.Spec {
	d.HTTP = url
	return healthcheck.Spec{Type: healthcheck.TypeHTTP, Def: d}
}

func probe(t *testing.T, sp healthcheck.Spec) healthcheck.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return NetProber{OutputBytes: 4096}.Probe(ctx, sp)
}

func TestHTTPProbeSendsTheCheckRequest(t *testing.T) {
	var got *http.Request
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got, body = r, string(b)
		w.Write([]byte(strings.Repeat("y", 10000)))
	}))
	defer srv.Close()
	r := probe(t, httpCheck(srv.URL+"/h", catalog.CheckDefinition{Method: "PUT", Body: `{"ping":1}`,
		Header: map[string][]string{"X-Probe": {"1"}, "Host": {"web.example"}}}))
	if got.Method != "PUT" || body != `{"ping":1}` || got.Header.Get("X-Probe") != "1" || got.Host != "web.example" ||
		got.Header.Get("User-Agent") != "Consul Health Check" {
		t.Fatalf("request %s host %q headers %v body %q", got.Method, got.Host, got.Header, body)
	}
	want := "HTTP PUT " + srv.URL + "/h: 200 OK Output: " + strings.Repeat("y", 4096)
	if r.Status != catalog.StatusPassing || r.Output != want {
		t.Fatalf("result %s with %d bytes of output, want passing with the first 4096 bytes of the body", r.Status, len(r.Output))
	}
}

func TestHTTPProbeStatuses(t *testing.T) {
	code := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) }))
	defer srv.Close()
	for c, want := range map[int]string{204: catalog.StatusPassing, 429: catalog.StatusWarning, 503: catalog.StatusCritical, 404: catalog.StatusCritical} {
		code = c
		if r := probe(t, httpCheck(srv.URL, catalog.CheckDefinition{})); r.Status != want {
			t.Errorf("HTTP %d: %s (%q), want %s", c, r.Status, r.Output, want)
		}
	}
}

func TestHTTPProbeTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	if r := probe(t, httpCheck(srv.URL, catalog.CheckDefinition{})); r.Status != catalog.StatusCritical || !strings.Contains(r.Output, "certificate") {
		t.Fatalf("self-signed certificate without TLSSkipVerify: %s %q", r.Status, r.Output)
	}
	if r := probe(t, httpCheck(srv.URL, catalog.CheckDefinition{TLSSkipVerify: true})); r.Status != catalog.StatusPassing {
		t.Fatalf("with TLSSkipVerify: %s %q", r.Status, r.Output)
	}
}

func TestProbeTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	r := NetProber{OutputBytes: 4096}.Probe(ctx, httpCheck(srv.URL, catalog.CheckDefinition{}))
	if r.Status != catalog.StatusCritical || time.Since(start) > 2*time.Second {
		t.Fatalf("a hanging endpoint: %s %q after %v, want critical at the timeout", r.Status, r.Output, time.Since(start))
	}
}

func TestTCPProbe(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.Listener.Addr().String()
	r := probe(t, healthcheck.Spec{Type: healthcheck.TypeTCP, Def: catalog.CheckDefinition{TCP: addr}})
	if r.Status != catalog.StatusPassing || r.Output != "TCP connect "+addr+": Success" {
		t.Fatalf("open port: %s %q", r.Status, r.Output)
	}
	srv.Close()
	r = probe(t, healthcheck.Spec{Type: healthcheck.TypeTCP, Def: catalog.CheckDefinition{TCP: addr}})
	if r.Status != catalog.StatusCritical || !strings.Contains(r.Output, "connection refused") {
		t.Fatalf("closed port: %s %q", r.Status, r.Output)
	}
}
