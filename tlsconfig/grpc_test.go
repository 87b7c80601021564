package tlsconfig_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"

	"github.com/synod-db/synod/tlsconfig"
)

// TestTerminatedReportsTheClientCertificate serves gRPC on a listener that
// terminates TLS itself: handlers must see the client's certificate (what
// certificate-based identity needs), and plaintext connections still work
// on a plaintext listener with the same credentials.
func TestTerminatedReportsTheClientCertificate(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "ca")
	cert, key := issue(t, ca, dir, "server")
	caFile := filepath.Join(dir, "ca.crt")
	writeCA(t, caFile, ca)
	f, err := tlsconfig.Load(tlsconfig.Info{CertFile: cert, KeyFile: key, TrustedCAFile: caFile, ClientCertAuth: true}, tlsconfig.Options{})
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan credentials.AuthInfo, 2)
	srv := grpc.NewServer(grpc.Creds(tlsconfig.Terminated()),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			p, _ := peer.FromContext(ctx)
			seen <- p.AuthInfo
			return h(ctx, req)
		}))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	t.Cleanup(srv.Stop)
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(tls.NewListener(raw, f.ServerConfig("h2"))) }()
	plainLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(plainLn) }()

	clientCert, err := tls.LoadX509KeyPair(issue(t, ca, dir, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	check := func(addr string, creds credentials.TransportCredentials) credentials.AuthInfo {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		return <-seen
	}
	info := check(raw.Addr().String(), credentials.NewTLS(&tls.Config{RootCAs: roots, Certificates: []tls.Certificate{clientCert}}))
	ti, ok := info.(credentials.TLSInfo)
	if !ok || len(ti.State.PeerCertificates) == 0 || ti.State.PeerCertificates[0].Subject.CommonName != "alice" {
		t.Fatalf("handler saw %#v, want the TLS state with client certificate CN alice", info)
	}
	if info := check(plainLn.Addr().String(), insecure.NewCredentials()); info.AuthType() != "insecure" {
		t.Fatalf("plaintext connection reported %q", info.AuthType())
	}
}
