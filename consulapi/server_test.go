package consulapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// newTestServer is a Server with no store: enough for what ServeHTTP
// answers before any endpoint runs, and for the pure helpers.
func newTestServer() *Server {
	return New(Config{Datacenter: "dc1", NodeName: "n1"})
}

func do(t *testing.T, s *Server, method, target, body string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(method, target, strings.NewReader(body)))
	resp := rec.Result()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestRoutingAnswersAsConsul(t *testing.T) {
	s := newTestServer()
	for _, tc := range []struct {
		method, target string
		code           int
		body, allow    string
	}{
		{"GET", "/", 200, "Consul Agent", ""},
		{"GET", "/v1/no/such", 404, "", ""},
		{"GET", "/v2/catalog/nodes", 404, "", ""},
		{"POST", "/v1/agent/services", 405, "method POST not allowed", "OPTIONS,GET"},
		{"GET", "/v1/agent/service/register", 405, "method GET not allowed", "OPTIONS,PUT"},
		{"OPTIONS", "/v1/catalog/nodes", 200, "", "OPTIONS,GET"},
		{"GET", "/v1/catalog/nodes?dc=dc2", 500, "No path to datacenter", ""},
		{"GET", "/v1/catalog/datacenters", 200, `["dc1"]`, ""},
		{"GET", "/v1/catalog/datacenters?pretty", 200, "[\n    \"dc1\"\n]\n", ""},
		{"GET", "/v1/health/state/", 400, "Missing check state", ""},
		{"GET", "/v1/catalog/node/", 400, "Missing node name", ""},
		{"GET", "/v1/health/service/x?passing=maybe", 400, "Invalid value for ?passing", ""},
	} {
		resp, body := do(t, s, tc.method, tc.target, "")
		if resp.StatusCode != tc.code || body != tc.body || resp.Header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d %q Allow %q; want %d %q Allow %q", tc.method, tc.target,
				resp.StatusCode, body, resp.Header.Get("Allow"), tc.code, tc.body, tc.allow)
		}
	}
}

func TestParseQuery(t *testing.T) {
	for target, want := range map[string]string{
		"/x?wait=soon":                    "Invalid wait time",
		"/x?index=-1":                     "Invalid index",
		"/x?stale&consistent":             "Cannot specify ?stale with ?consistent, conflicting semantics.",
		"/x?index=7&wait=2s&stale":        "",
		"/x?consistent&filter=a+%3D%3D+b": "",
	} {
		q, err := parseQuery(httptest.NewRequest("GET", target, nil))
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != want {
			t.Errorf("%s: %q, want %q", target, got, want)
		}
		if want == "" && strings.Contains(target, "stale") && (q.index != 7 || q.wait != 2*time.Second || q.mode != modeStale) {
			t.Errorf("%s: %+v", target, q)
		}
		if want == "" && strings.Contains(target, "filter") && (q.mode != modeConsistent || q.filter != "a == b") {
			t.Errorf("%s: %+v", target, q)
		}
	}
}

func TestDecodeBody(t *testing.T) {
	s := New(Config{Limits: Limits{MaxBodyBytes: 20}})
	var v struct{ Name string }
	for body, want := range map[string]string{
		``:                            "Request decode failed: EOF",
		`{"Name":`:                    "Request decode failed: unexpected end of JSON input",
		`{"Name":1}`:                  "Request decode failed: json: cannot unmarshal number into Go struct field .Name of type string",
		`{"name":"x","z":1}`:          "",
		`{"Name":"0123456789abcdef"}`: "Request body too large: the limit is 20 bytes",
	} {
		err := s.decodeBody(httptest.NewRequest("PUT", "/x", strings.NewReader(body)), &v)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != want {
			t.Errorf("%q: %q, want %q", body, got, want)
		}
	}
	if v.Name != "x" {
		t.Errorf("a lowercase field name was not matched: %+v", v)
	}
}

func TestLimiter(t *testing.T) {
	l := newLimiter(2, 3)
	r1, err1 := l.acquire("a")
	_, err2 := l.acquire("a")
	_, err3 := l.acquire("a")
	if err1 != nil || err2 != nil || err3 == nil || toHTTP(err3).Code != http.StatusTooManyRequests {
		t.Fatalf("per client: %v %v %v", err1, err2, err3)
	}
	if _, err := l.acquire("b"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.acquire("c"); err == nil {
		t.Fatal("a fourth query passed a total of 3")
	}
	r1()
	if _, err := l.acquire("c"); err != nil {
		t.Fatalf("a released slot was not reused: %v", err)
	}
}

func TestWaitTime(t *testing.T) {
	s := New(Config{Limits: Limits{DefaultWait: 16 * time.Second, MaxWait: 32 * time.Second}})
	for wait, lo := range map[time.Duration]time.Duration{0: 16 * time.Second, time.Second: time.Second, time.Hour: 32 * time.Second} {
		for i := 0; i < 50; i++ {
			if got := s.waitTime(wait); got < lo || got >= lo+lo/16 {
				t.Fatalf("waitTime(%v) = %v, want in [%v, %v)", wait, got, lo, lo+lo/16)
			}
		}
	}
}
