package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/synod-db/synod/internal/testpki"
)

// tlsPair returns a member certificate of a fresh CA (for 127.0.0.1) and a
// pool trusting that CA.
func tlsPair(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	ca, err := testpki.NewCA("transport CA")
	if err != nil {
		t.Fatal(err)
	}
	p, err := ca.Issue("member", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(p.CertPEM, p.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return cert, pool
}

func TestGRPCDialsTLSForHTTPSPeerURLsOnly(t *testing.T) {
	cert, pool := tlsPair(t)
	serverTLS := &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
	dialTLS := func(name string) *tls.Config {
		return &tls.Config{ServerName: name, RootCAs: pool, Certificates: []tls.Certificate{cert}}
	}
	secure := startMember(t, 2, testCluster, Config{Membership: &fakeMembership{}}, grpc.Creds(credentials.NewTLS(serverTLS)))
	secure.url = "https://" + secure.addr
	plain := startMember(t, 3, testCluster, Config{})
	a := startMember(t, 1, testCluster, Config{TLS: dialTLS})
	a.tr.AddPeer(2, []string{secure.url})
	a.tr.AddPeer(3, []string{plain.url})
	sendUntil(t, a.tr, 1, 2, secure.rec) // TLS with a client certificate
	sendUntil(t, a.tr, 1, 3, plain.rec)  // plaintext to the http:// peer, from the same transport

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if got, err := FetchMembers(ctx, []string{secure.url}, DialTLS(dialTLS)); err != nil || string(got) != "members" {
		t.Fatalf("FetchMembers over TLS: %q, %v", got, err)
	}
	for name, tc := range map[string]struct {
		url  string
		opts []grpc.DialOption
	}{
		"plaintext to a TLS peer":             {"http://" + secure.addr, []grpc.DialOption{DialTLS(dialTLS)}},
		"TLS without the CA or a certificate": {secure.url, nil},
		"TLS without a client certificate": {secure.url, []grpc.DialOption{DialTLS(func(name string) *tls.Config {
			return &tls.Config{ServerName: name, RootCAs: pool}
		})}},
	} {
		if _, err := FetchMembers(ctx, []string{tc.url}, tc.opts...); err == nil {
			t.Errorf("%s: FetchMembers succeeded", name)
		}
	}
}

func TestPeerAddressMarksTLS(t *testing.T) {
	for _, tc := range []struct {
		url    string
		secure bool
	}{
		{"https://127.0.0.1:2380", true}, {"http://127.0.0.1:2380", false},
		{"unixs://peer.sock", true}, {"unix://peer.sock", false}, {"127.0.0.1:2380", false},
	} {
		a, err := peerAddress(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := a.Attributes.Value(secureKey{}).(bool); got != tc.secure {
			t.Errorf("%s: TLS %v, want %v", tc.url, got, tc.secure)
		}
	}
}
