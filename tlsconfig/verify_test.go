package tlsconfig_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"path/filepath"
	"testing"

	"github.com/synod-db/synod/internal/testpki"
	"github.com/synod-db/synod/tlsconfig"
)

// clientPair returns a client configuration presenting a certificate with
// common name cn (and host names hosts), trusting ca.
func clientPair(t *testing.T, ca *testpki.CA, cn string, hosts ...string) (*tls.Config, testpki.Pair) {
	t.Helper()
	p, err := ca.Issue(cn, hosts...)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(p.CertPEM, p.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	return &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}, ServerName: "127.0.0.1"}, p
}

// peerServer serves the peer side of info with ca as the trusted CA.
func peerServer(t *testing.T, ca *testpki.CA, info tlsconfig.Info, opts tlsconfig.Options) (string, *tlsconfig.Files) {
	t.Helper()
	dir := t.TempDir()
	info.CertFile, info.KeyFile = issue(t, ca, dir, "server")
	info.TrustedCAFile = filepath.Join(dir, "ca.crt")
	info.ClientCertAuth = true
	writeCA(t, info.TrustedCAFile, ca)
	f, err := tlsconfig.Load(info, opts)
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, f.ServerConfig()), f
}

// TestAllowedCommonNamesAndHostnames: --peer-cert-allowed-cn and
// --peer-cert-allowed-hostname refuse verified certificates that do not
// match; both at once is a configuration error.
func TestAllowedCommonNamesAndHostnames(t *testing.T) {
	ca := newCA(t, "ca")
	addr, _ := peerServer(t, ca, tlsconfig.Info{AllowedCN: "m1,m2"}, tlsconfig.Options{})
	for cn, ok := range map[string]bool{"m1": true, "m2": true, "intruder": false} {
		cfg, _ := clientPair(t, ca, cn)
		if _, err := dial(addr, cfg); (err == nil) != ok {
			t.Errorf("allowed CNs, client %s: %v, want allowed=%v", cn, err, ok)
		}
	}
	addr, _ = peerServer(t, ca, tlsconfig.Info{AllowedHostname: "m1.example.com"}, tlsconfig.Options{})
	for cn, ok := range map[string]bool{"m1.example.com": true, "m2.example.com": false} {
		cfg, _ := clientPair(t, ca, cn, cn)
		if _, err := dial(addr, cfg); (err == nil) != ok {
			t.Errorf("allowed hostnames, client %s: %v, want allowed=%v", cn, err, ok)
		}
	}
	dir := t.TempDir()
	c, k := issue(t, ca, dir, "x")
	if _, err := tlsconfig.Load(tlsconfig.Info{CertFile: c, KeyFile: k, AllowedCN: "a", AllowedHostname: "b"},
		tlsconfig.Options{}); !errors.Is(err, tlsconfig.ErrTLS) {
		t.Errorf("both allowed CNs and hostnames: %v", err)
	}
}

// TestCRLRefusesRevokedAndReloads: a certificate the CRL file revokes is
// refused; a CRL replaced on disk is picked up without a restart.
func TestCRLRefusesRevokedAndReloads(t *testing.T) {
	ca := newCA(t, "ca")
	good, _ := clientPair(t, ca, "good")
	bad, badPair := clientPair(t, ca, "bad")
	crlPath := filepath.Join(t.TempDir(), "crl.pem")
	crl, err := ca.RevocationList(badPair)
	if err != nil {
		t.Fatal(err)
	}
	if err := testpki.WriteFile(crlPath, crl); err != nil {
		t.Fatal(err)
	}
	addr, _ := peerServer(t, ca, tlsconfig.Info{CRLFile: crlPath}, tlsconfig.Options{ReloadInterval: 1})
	if _, err := dial(addr, good); err != nil {
		t.Fatalf("a certificate the CRL does not list: %v", err)
	}
	if _, err := dial(addr, bad); err == nil {
		t.Fatal("a revoked certificate was accepted")
	}
	empty, err := ca.RevocationList()
	if err != nil {
		t.Fatal(err)
	}
	if err := testpki.WriteFile(crlPath, empty); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new CRL", func() bool { _, err := dial(addr, bad); return err == nil })
	if err := testpki.WriteFile(crlPath, []byte("not a CRL")); err != nil {
		t.Fatal(err)
	}
	if _, err := tlsconfig.Load(tlsconfig.Info{CertFile: crlPath, KeyFile: crlPath, CRLFile: crlPath}, tlsconfig.Options{}); err == nil {
		t.Fatal("a bad CRL file loaded")
	}
}

// TestMaxVersion: --tls-max-version caps the negotiated version; a maximum
// below the minimum is refused.
func TestMaxVersion(t *testing.T) {
	ca := newCA(t, "ca")
	addr, _ := peerServer(t, ca, tlsconfig.Info{}, tlsconfig.Options{MaxVersion: tls.VersionTLS12})
	cfg, _ := clientPair(t, ca, "c")
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if v := c.ConnectionState().Version; v != tls.VersionTLS12 {
		t.Errorf("negotiated %s, want TLS 1.2", tls.VersionName(v))
	}
	c.Close()
	dir := t.TempDir()
	cert, key := issue(t, ca, dir, "x")
	if _, err := tlsconfig.Load(tlsconfig.Info{CertFile: cert, KeyFile: key},
		tlsconfig.Options{MinVersion: tls.VersionTLS13, MaxVersion: tls.VersionTLS12}); !errors.Is(err, tlsconfig.ErrTLS) {
		t.Errorf("max below min: %v", err)
	}
}
