package checkrunner

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	hv1 "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/synod-db/synod/catalog"
	"github.com/synod-db/synod/healthcheck"
)

// Prober runs one probe of a check; ctx carries its timeout.
type Prober interface {
	Probe(ctx context.Context, sp healthcheck.Spec) healthcheck.Result
}

// NetProber probes over the network as Consul's agent does, reading at
// most OutputBytes of an HTTP body.
type NetProber struct {
	OutputBytes int
}

// Probe runs the check's HTTP, TCP or gRPC probe; a type it does not
// probe is critical.
func (p NetProber) Probe(ctx context.Context, sp healthcheck.Spec) healthcheck.Result {
	switch sp.Type {
	case healthcheck.TypeHTTP:
		return p.http(ctx, sp.Def)
	case healthcheck.TypeTCP:
		return probeTCP(ctx, sp.Def)
	case healthcheck.TypeGRPC:
		return probeGRPC(ctx, sp.Def)
	}
	return critical(fmt.Errorf("checkrunner: %s checks are not run", sp.Type))
}

func critical(err error) healthcheck.Result {
	return healthcheck.Result{Status: catalog.StatusCritical, Output: err.Error()}
}

func tlsConfig(d catalog.CheckDefinition) *tls.Config {
	return &tls.Config{InsecureSkipVerify: d.TLSSkipVerify, ServerName: d.TLSServerName}
}

// http sends the check's request (method, headers, body): 2xx is passing,
// 429 warning, anything else critical; the output is Consul's "HTTP
// <method> <url>: <status line> Output: <body>", with the first
// OutputBytes of the body.
func (p NetProber) http(ctx context.Context, d catalog.CheckDefinition) healthcheck.Result {
	method := d.Method
	if method == "" {
		method = http.MethodGet
	}
	req, err := http.NewRequestWithContext(ctx, method, d.HTTP, strings.NewReader(d.Body))
	if err != nil {
		return critical(err)
	}
	req.Header = http.Header(d.Header).Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	if host := req.Header.Get("Host"); host != "" {
		req.Host = host
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "Consul Health Check")
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "text/plain, text/*, */*")
	}
	tr := &http.Transport{DisableKeepAlives: true, TLSClientConfig: tlsConfig(d), Proxy: http.ProxyFromEnvironment}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return critical(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, int64(p.OutputBytes)))
	out := fmt.Sprintf("HTTP %s %s: %s Output: %s", method, d.HTTP, resp.Status, body)
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode <= 299:
		return healthcheck.Result{Status: catalog.StatusPassing, Output: out}
	case resp.StatusCode == http.StatusTooManyRequests:
		return healthcheck.Result{Status: catalog.StatusWarning, Output: out}
	}
	return healthcheck.Result{Status: catalog.StatusCritical, Output: out}
}

// probeTCP connects (over TLS with TCPUseTLS): passing when it can.
func probeTCP(ctx context.Context, d catalog.CheckDefinition) healthcheck.Result {
	kind := "TCP"
	var conn net.Conn
	var err error
	if d.TCPUseTLS {
		kind = "TCP+TLS"
		conn, err = (&tls.Dialer{Config: tlsConfig(d)}).DialContext(ctx, "tcp", d.TCP)
	} else {
		conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", d.TCP)
	}
	if err != nil {
		return critical(err)
	}
	conn.Close()
	return healthcheck.Result{Status: catalog.StatusPassing, Output: fmt.Sprintf("%s connect %s: Success", kind, d.TCP)}
}

// probeGRPC calls grpc.health.v1.Health/Check on "host:port[/service]"
// (over TLS with GRPCUseTLS): passing when the service is SERVING.
func probeGRPC(ctx context.Context, d catalog.CheckDefinition) healthcheck.Result {
	addr, service, _ := strings.Cut(d.GRPC, "/")
	creds := insecure.NewCredentials()
	if d.GRPCUseTLS {
		creds = credentials.NewTLS(tlsConfig(d))
	}
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return critical(err)
	}
	defer conn.Close()
	resp, err := hv1.NewHealthClient(conn).Check(ctx, &hv1.HealthCheckRequest{Service: service})
	if err != nil {
		return critical(err)
	}
	if resp.Status != hv1.HealthCheckResponse_SERVING {
		return critical(fmt.Errorf("gRPC %s serving status: %s", d.GRPC, resp.Status))
	}
	return healthcheck.Result{Status: catalog.StatusPassing, Output: fmt.Sprintf("gRPC check %s: success", d.GRPC)}
}
