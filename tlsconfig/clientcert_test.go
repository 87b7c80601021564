package tlsconfig_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/synod-db/synod/internal/testpki"
	"github.com/synod-db/synod/tlsconfig"
)

// serverPKI writes a CA bundle and a server certificate for 127.0.0.1 to
// a new directory.
func serverPKI(t *testing.T) (dir string, ca *testpki.CA, caFile, srvCert, srvKey string) {
	t.Helper()
	dir = t.TempDir()
	ca = newCA(t, "ca")
	caFile = filepath.Join(dir, "ca.crt")
	writeCA(t, caFile, ca)
	srvCert, srvKey = issue(t, ca, dir, "server")
	return dir, ca, caFile, srvCert, srvKey
}

// --client-cert-file/--client-key-file (and the peer ones): the member
// presents that certificate, not its serving one, when it dials.
func TestClientCertFileIsPresentedWhenDialing(t *testing.T) {
	dir, ca, caFile, srvCert, srvKey := serverPKI(t)
	cliCert, cliKey := issue(t, ca, dir, "dialer")
	f, err := tlsconfig.Load(tlsconfig.Info{CertFile: srvCert, KeyFile: srvKey, TrustedCAFile: caFile, ClientCertAuth: true,
		ClientCertFile: cliCert, ClientKeyFile: cliKey}, tlsconfig.Options{})
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan string, 1)
	pair, err := tls.LoadX509KeyPair(srvCert, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	srv := &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAnyClientCert}
	srv.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) > 0 {
			seen <- cs.PeerCertificates[0].Subject.CommonName
		}
		return nil
	}
	addr := serve(t, srv)
	if _, err := dial(addr, f.ClientConfig("127.0.0.1")); err != nil {
		t.Fatal(err)
	}
	select {
	case cn := <-seen:
		if cn != "dialer" {
			t.Errorf("presented %q when dialing, want the client cert file's", cn)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the server saw no client certificate")
	}
	if _, err := tlsconfig.Load(tlsconfig.Info{CertFile: srvCert, KeyFile: srvKey, ClientCertFile: cliCert}, tlsconfig.Options{}); err == nil {
		t.Error("a client cert file without its key file was accepted")
	}
}

// --self-signed-cert-validity: generated certificates last that long.
func TestSelfCertValidity(t *testing.T) {
	dir := t.TempDir()
	certFile, _, err := tlsconfig.SelfCert(dir, []string{"127.0.0.1:2379"}, 3*365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Until(c.NotAfter); left < 3*365*24*time.Hour-2*time.Hour || left > 3*365*24*time.Hour {
		t.Errorf("certificate valid for another %v, want three years", left)
	}
}

// VerifyClientSAN (the peer side unless --peer-skip-client-san-verification):
// a client certificate with SANs must name the address it connects from.
func TestClientSANMustNameTheRemoteAddress(t *testing.T) {
	dir, ca, caFile, srvCert, srvKey := serverPKI(t)
	for _, verify := range []bool{true, false} {
		f, err := tlsconfig.Load(tlsconfig.Info{CertFile: srvCert, KeyFile: srvKey, TrustedCAFile: caFile, ClientCertAuth: true,
			VerifyClientSAN: verify}, tlsconfig.Options{})
		if err != nil {
			t.Fatal(err)
		}
		addr := serve(t, f.ServerConfig())
		for name, hosts := range map[string][]string{"elsewhere": {"10.9.9.9", "peer.invalid"}, "loopback": {"10.9.9.9", "127.0.0.1"}, "no-sans": nil} {
			pair, err := ca.Issue(name, hosts...)
			if err != nil {
				t.Fatal(err)
			}
			cert, key, err := pair.Write(dir, name)
			if err != nil {
				t.Fatal(err)
			}
			cl, err := tlsconfig.Load(tlsconfig.Info{CertFile: cert, KeyFile: key, TrustedCAFile: caFile}, tlsconfig.Options{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = dial(addr, cl.ClientConfig("127.0.0.1"))
			if refused := name == "elsewhere" && verify; (err != nil) != refused {
				t.Errorf("verify %v, client certificate %s (%v): err %v, want refused %v", verify, name, hosts, err, refused)
			}
		}
	}
}
