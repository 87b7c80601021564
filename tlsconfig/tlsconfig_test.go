package tlsconfig_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/synod-db/synod/internal/testpki"
	"github.com/synod-db/synod/tlsconfig"
)

func newCA(t *testing.T, name string) *testpki.CA {
	t.Helper()
	ca, err := testpki.NewCA(name)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func issue(t *testing.T, ca *testpki.CA, dir, name string) (string, string) {
	t.Helper()
	p, err := ca.Issue(name, "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	c, k, err := p.Write(dir, name)
	if err != nil {
		t.Fatal(err)
	}
	return c, k
}

func writeCA(t *testing.T, path string, cas ...*testpki.CA) {
	t.Helper()
	var b []byte
	for _, ca := range cas {
		b = append(b, ca.PEM...)
	}
	if err := testpki.WriteFile(path, b); err != nil {
		t.Fatal(err)
	}
}

func TestParseVersionAndCipherSuites(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint16
		err  string
	}{
		{"TLS1.2", tls.VersionTLS12, ""},
		{"TLS1.3", tls.VersionTLS13, ""},
		{"TLS1.1", 0, `unexpected TLS version "TLS1.1" (must be one of: TLS1.2, TLS1.3)`},
		{"", 0, "unexpected TLS version"},
	} {
		got, err := tlsconfig.ParseVersion(tc.in)
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("ParseVersion(%q) = %v, %v; want %v, %q", tc.in, got, err, tc.want, tc.err)
		}
	}
	got, err := tlsconfig.ParseCipherSuites("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305")
	if err != nil || len(got) != 2 || got[0] != tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 ||
		got[1] != tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 {
		t.Errorf("cipher suites: %v, %v", got, err)
	}
	if got, err := tlsconfig.ParseCipherSuites(""); err != nil || got != nil {
		t.Errorf("empty list: %v, %v", got, err)
	}
	if _, err := tlsconfig.ParseCipherSuites("TLS_NOPE"); err == nil || err.Error() != `unexpected TLS cipher suite "TLS_NOPE"` {
		t.Errorf("unknown suite: %v", err)
	}
}

func TestLoadRejectsBadFiles(t *testing.T) {
	dir := t.TempDir()
	ca, other := newCA(t, "ca"), newCA(t, "other")
	cert, key := issue(t, ca, dir, "server")
	_, otherKey := issue(t, other, dir, "stranger")
	caFile := filepath.Join(dir, "ca.crt")
	writeCA(t, caFile, ca)
	junk := filepath.Join(dir, "junk.crt")
	if err := os.WriteFile(junk, []byte("not PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		info tlsconfig.Info
		want string
	}{
		{"missing cert", tlsconfig.Info{CertFile: filepath.Join(dir, "nope.crt"), KeyFile: key}, "no such file"},
		{"key only", tlsconfig.Info{KeyFile: key}, "needs both a cert file and a key file"},
		{"mismatched key", tlsconfig.Info{CertFile: cert, KeyFile: otherKey}, "private key does not match public key"},
		{"junk cert", tlsconfig.Info{CertFile: junk, KeyFile: key}, "failed to find any PEM data"},
		{"junk CA", tlsconfig.Info{CertFile: cert, KeyFile: key, TrustedCAFile: junk}, "holds no PEM certificate"},
		{"cert auth without CA", tlsconfig.Info{CertFile: cert, KeyFile: key, ClientCertAuth: true}, "needs a trusted CA file"},
	} {
		_, err := tlsconfig.Load(tc.info, tlsconfig.Options{})
		if err == nil || !errors.Is(err, tlsconfig.ErrTLS) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := tlsconfig.Load(tlsconfig.Info{CertFile: cert, KeyFile: key, TrustedCAFile: caFile, ClientCertAuth: true},
		tlsconfig.Options{}); err != nil {
		t.Fatalf("good files: %v", err)
	}
}

// serve accepts TLS connections with cfg until the test ends.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.(*tls.Conn).Handshake()
				_, _ = c.Write([]byte{1})
			}()
		}
	}()
	return ln.Addr().String()
}

// dial handshakes with addr and waits for the server's byte, so that a
// rejected client certificate (TLS 1.3 reports it after the handshake)
// shows as an error. It returns the server's leaf certificate.
func dial(addr string, cfg *tls.Config) (*x509.Certificate, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != nil {
		return nil, err
	}
	return c.ConnectionState().PeerCertificates[0], nil
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServerCertificateAndCAReloadWithoutRestart(t *testing.T) {
	dir := t.TempDir()
	ca1, ca2 := newCA(t, "ca1"), newCA(t, "ca2")
	cert, key := issue(t, ca1, dir, "server")
	caFile := filepath.Join(dir, "ca.crt")
	writeCA(t, caFile, ca1)
	f, err := tlsconfig.Load(tlsconfig.Info{CertFile: cert, KeyFile: key, TrustedCAFile: caFile, ClientCertAuth: true},
		tlsconfig.Options{ReloadInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, f.ServerConfig())
	roots := x509.NewCertPool()
	roots.AddCert(ca1.Cert)
	roots.AddCert(ca2.Cert)
	client1, err := tls.LoadX509KeyPair(issue(t, ca1, dir, "client1"))
	if err != nil {
		t.Fatal(err)
	}
	client2, err := tls.LoadX509KeyPair(issue(t, ca2, dir, "client2"))
	if err != nil {
		t.Fatal(err)
	}
	as := func(c tls.Certificate) *tls.Config {
		return &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", Certificates: []tls.Certificate{c}}
	}
	first, err := dial(addr, as(client1))
	if err != nil {
		t.Fatalf("client of the trusted CA: %v", err)
	}
	if _, err := dial(addr, as(client2)); err == nil {
		t.Fatal("a client certificate from an untrusted CA was accepted")
	}

	// Rotate the server certificate (to one from ca2): new connections see it.
	p, err := ca2.Issue("server", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Write(dir, "server"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the rotated server certificate", func() bool {
		got, err := dial(addr, as(client1))
		return err == nil && got.SerialNumber.Cmp(first.SerialNumber) != 0 && got.Issuer.CommonName == "ca2"
	})

	// Replace the CA bundle: ca2's clients get in, ca1's no longer do.
	writeCA(t, caFile, ca2)
	waitFor(t, "the reloaded CA bundle", func() bool {
		_, err := dial(addr, as(client2))
		return err == nil
	})
	if _, err := dial(addr, as(client1)); err == nil {
		t.Fatal("a client of the CA removed from the bundle was still accepted")
	}
}

func TestBrokenRotationKeepsThePreviousCertificate(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "ca")
	cert, key := issue(t, ca, dir, "server")
	f, err := tlsconfig.Load(tlsconfig.Info{CertFile: cert, KeyFile: key}, tlsconfig.Options{ReloadInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, f.ServerConfig())
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	cfg := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}
	before, err := dial(addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Half a rotation: a new certificate whose key is not in place yet.
	p, err := ca.Issue("server", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if err := testpki.WriteFile(cert, p.CertPEM); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		got, err := dial(addr, cfg)
		if err != nil || got.SerialNumber.Cmp(before.SerialNumber) != 0 {
			t.Fatalf("mid-rotation handshake %d: %v (serial changed: %v)", i, err, err == nil)
		}
		time.Sleep(2 * time.Millisecond) // let the 1 ms check interval pass between handshakes
	}
	if err := testpki.WriteFile(key, p.KeyPEM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the completed rotation", func() bool {
		got, err := dial(addr, cfg)
		return err == nil && got.SerialNumber.Cmp(before.SerialNumber) != 0
	})
}

func TestSelfCertIsGeneratedOnceAndLoads(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fixtures", "client")
	cert, key, err := tlsconfig.SelfCert(dir, []string{"127.0.0.1:2379", "localhost:2379"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(cert)
	if _, _, err := tlsconfig.SelfCert(dir, []string{"127.0.0.1:2379"}, 0); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(cert)
	if string(before) != string(after) {
		t.Fatal("an existing auto-TLS certificate was regenerated")
	}
	f, err := tlsconfig.Load(tlsconfig.Info{CertFile: cert, KeyFile: key, AutoTLS: true}, tlsconfig.Options{})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, f.ServerConfig())
	if _, err := dial(addr, f.ClientConfig("127.0.0.1")); err != nil {
		t.Fatalf("auto TLS peers do not verify each other's self-signed certificates: %v", err)
	}
}
