package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// httpDo sends one request and returns its status, headers and body; a
// transport error is returned as status 0 with the error text as body.
func httpDo(cli *http.Client, method, url, host, body string, hdr map[string]string) (int, http.Header, string) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, nil, err.Error()
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := cli.Do(req)
	if err != nil {
		return 0, nil, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestGatewayHTTPFlags runs etcd's HTTP flags on both servers and checks
// the same answers: --listen-client-http-urls moves HTTP off the client
// URL, --host-whitelist refuses other Host names on plaintext with etcd's
// text, --cors echoes an allowed origin only, and --enable-grpc-gateway=false
// leaves /health but not /v3/.
func TestGatewayHTTPFlags(t *testing.T) {
	for _, kind := range kinds() {
		t.Run(kind, func(t *testing.T) {
			requireKind(t, kind)
			ports, err := freePorts(1)
			if err != nil {
				t.Fatal(err)
			}
			httpURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
			cl := startCluster(t, kind, 1, "--listen-client-http-urls="+httpURL,
				"--host-whitelist=127.0.0.1,localhost", "--cors=https://app.example:8443")
			cli := &http.Client{Timeout: 10 * time.Second}
			m := cl.Members[0]
			if out, errOut, code := etcdctl(t, []string{m.Endpoint}, "put", "k", "v"); code != 0 {
				t.Fatalf("gRPC on the client URL: %s %s", out, errOut)
			}
			range1 := `{"key":"aw=="}`
			if code, _, body := httpDo(cli, "POST", httpURL+"/v3/kv/range", "", range1, nil); code != 200 || !strings.Contains(body, `"value":"dg=="`) {
				t.Errorf("gateway on --listen-client-http-urls: %d %s", code, body)
			}
			if code, _, body := httpDo(cli, "POST", m.ClientURL+"/v3/kv/range", "", range1, nil); code == 200 {
				t.Errorf("HTTP still served on the client URL with --listen-client-http-urls: %s", body)
			}
			code, _, body := httpDo(cli, "POST", httpURL+"/v3/kv/range", "evil.example", range1, nil)
			if code != http.StatusMisdirectedRequest || !strings.Contains(body, `etcd --host-whitelist "evil.example"`) {
				t.Errorf("unlisted Host: %d %q", code, body)
			}
			_, hdr, _ := httpDo(cli, "POST", httpURL+"/v3/kv/range", "", range1, map[string]string{"Origin": "https://app.example:8443"})
			if got := hdr.Get("Access-Control-Allow-Origin"); got != "https://app.example:8443" {
				t.Errorf("allowed origin: Access-Control-Allow-Origin %q", got)
			}
			_, hdr, _ = httpDo(cli, "POST", httpURL+"/v3/kv/range", "", range1, map[string]string{"Origin": "https://other.example"})
			if got, ok := hdr["Access-Control-Allow-Origin"]; ok {
				t.Errorf("other origin: Access-Control-Allow-Origin %q", got)
			}
			cl.Stop()

			off := startCluster(t, kind, 1, "--enable-grpc-gateway=false")
			if code, _, body := httpDo(cli, "POST", off.Members[0].ClientURL+"/v3/kv/range", "", range1, nil); code != 404 {
				t.Errorf("gateway disabled: /v3/kv/range answered %d %s", code, body)
			}
			if code, _, body := httpDo(cli, "GET", off.Members[0].ClientURL+"/health", "", "", nil); code != 200 {
				t.Errorf("gateway disabled: /health answered %d %s", code, body)
			}
		})
	}
}

// TestGatewayOverTLS: on an https client URL an HTTP/1.1 client reaches the
// gateway with its client certificate; once auth is on, a request whose
// certificate names a user (a CN) is refused with etcd's message, since
// the gateway cannot pass that identity on, while a token in the
// Authorization header from a certificate without a CN works. Both
// servers must answer alike.
func TestGatewayOverTLS(t *testing.T) {
	for _, kind := range kinds() {
		t.Run(kind, func(t *testing.T) {
			requireKind(t, kind)
			p := newPKI(t)
			anonCert, anonKey := p.issue(t, p.ca, "")
			roots := []*x509.Certificate{p.ca.Cert}
			cl := startClusterWith(t, kind, 1, clusterOptions{
				ClientScheme: "https", Flags: p.flags(),
				ClientTLS: clientTLS(t, roots, p.clientCert, p.clientKey),
			})
			// A client that offers h2 as well (curl, browsers, Go's default
			// transport) must reach the gateway too.
			h2 := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
				TLSClientConfig: clientTLS(t, roots, p.clientCert, p.clientKey), ForceAttemptHTTP2: true}}
			if code, _, body := httpDo(h2, "POST", cl.Members[0].ClientURL+"/v3/kv/range", "", `{"key":"aw=="}`, nil); code != 200 || !strings.Contains(body, `"header"`) {
				t.Errorf("a client offering h2 and http/1.1: %d %q", code, body)
			}
			named := httpsClient(clientTLS(t, roots, p.clientCert, p.clientKey))
			anon := httpsClient(clientTLS(t, roots, anonCert, anonKey))
			base := cl.Members[0].ClientURL
			post := func(c *http.Client, path, body, token string) (int, string) {
				hdr := map[string]string{}
				if token != "" {
					hdr["Authorization"] = token
				}
				code, _, b := httpDo(c, "POST", base+path, "", body, hdr)
				return code, b
			}
			if code, body := post(named, "/v3/kv/put", `{"key":"aw==","value":"dg=="}`, ""); code != 200 {
				t.Fatalf("put over https with HTTP/1.1: %d %s", code, body)
			}
			for _, r := range [][2]string{
				{"/v3/auth/user/add", `{"name":"root","password":"pw"}`},
				{"/v3/auth/user/grant", `{"user":"root","role":"root"}`},
				{"/v3/auth/enable", `{}`},
			} {
				if code, body := post(named, r[0], r[1], ""); code != 200 {
					t.Fatalf("%s: %d %s", r[0], code, body)
				}
			}
			code, body := post(named, "/v3/kv/range", `{"key":"aw=="}`, "")
			if code != 400 || !strings.Contains(body, "CommonName of client sending a request against gateway will be ignored") {
				t.Errorf("a certificate with a CN once auth is on: %d %q", code, body)
			}
			code, body = post(anon, "/v3/auth/authenticate", `{"name":"root","password":"pw"}`, "")
			tok := tokenOf(body)
			if code != 200 || tok == "" {
				t.Fatalf("authenticate: %d %s", code, body)
			}
			if code, body := post(anon, "/v3/kv/range", `{"key":"aw=="}`, tok); code != 200 || !strings.Contains(body, `"value":"dg=="`) {
				t.Errorf("range with a token over https: %d %s", code, body)
			}
			// Without a token the request is refused by both, in different
			// words: etcd's gateway dials its gRPC server with the server's
			// own certificate, so etcd judges the request as the user named
			// by that certificate's CN ("permission denied"); synod's gateway
			// passes on no identity ("user name is empty"). See
			// docs/compatibility.md.
			if code, body := post(anon, "/v3/kv/range", `{"key":"aw=="}`, ""); (code != 400 && code != 403) || strings.Contains(body, "dg==") {
				t.Errorf("range without a token: %d %s", code, body)
			}
		})
	}
}

// httpsClient is an HTTP/1.1 client over TLS with cfg.
func httpsClient(cfg *tls.Config) *http.Client {
	cfg = cfg.Clone()
	cfg.NextProtos = []string{"http/1.1"}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
}

// tokenOf is the "token" field of an Authenticate response.
func tokenOf(body string) string {
	_, rest, ok := strings.Cut(body, `"token":`)
	if !ok {
		return ""
	}
	rest = strings.TrimSpace(rest)
	if !strings.HasPrefix(rest, `"`) {
		return ""
	}
	tok, _, _ := strings.Cut(rest[1:], `"`)
	return tok
}
