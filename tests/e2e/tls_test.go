package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/synod-db/synod/internal/testpki"
)

// pki is a throwaway PKI written to a test's temporary directory: a CA and
// its bundle file, a server certificate for 127.0.0.1 (used for the client
// and the peer listeners, and by members dialing each other), a client
// certificate, and a client certificate from a CA the cluster does not
// trust.
type pki struct {
	dir                    string
	ca, unknownCA          *testpki.CA
	caFile                 string
	serverCert, serverKey  string
	clientCert, clientKey  string
	strangerCert, stranger string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir()}
	var err error
	if p.ca, err = testpki.NewCA("synod e2e CA"); err != nil {
		t.Fatal(err)
	}
	if p.unknownCA, err = testpki.NewCA("unknown CA"); err != nil {
		t.Fatal(err)
	}
	p.caFile = filepath.Join(p.dir, "ca.crt")
	if err := testpki.WriteFile(p.caFile, p.ca.PEM); err != nil {
		t.Fatal(err)
	}
	p.serverCert, p.serverKey = p.issue(t, p.ca, "server", "127.0.0.1", "localhost")
	p.clientCert, p.clientKey = p.issue(t, p.ca, "client")
	p.strangerCert, p.stranger = p.issue(t, p.unknownCA, "stranger")
	return p
}

func (p *pki) issue(t *testing.T, ca *testpki.CA, name string, hosts ...string) (cert, key string) {
	t.Helper()
	pair, err := ca.Issue(name, hosts...)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err = pair.Write(p.dir, name)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// flags are the member flags for mutual TLS on the client and peer links.
func (p *pki) flags() []string {
	return []string{
		"--cert-file=" + p.serverCert, "--key-file=" + p.serverKey,
		"--trusted-ca-file=" + p.caFile, "--client-cert-auth",
		"--peer-cert-file=" + p.serverCert, "--peer-key-file=" + p.serverKey,
		"--peer-trusted-ca-file=" + p.caFile, "--peer-client-cert-auth",
	}
}

// clientTLS is a client configuration trusting roots and presenting the
// certificate in certFile/keyFile.
func clientTLS(t *testing.T, roots []*x509.Certificate, certFile, keyFile string) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	for _, c := range roots {
		pool.AddCert(c)
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg
}

// httpsHealth fetches /health from addr over HTTP/1.1 on TLS with cfg and
// returns the served certificate's serial number.
func httpsHealth(addr string, cfg *tls.Config) (string, error) {
	tr := &http.Transport{TLSClientConfig: cfg.Clone(), DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	cli := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	resp, err := cli.Get("https://" + addr + "/health")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"health":"true"`) {
		return "", fmt.Errorf("/health: %s %s", resp.Status, body)
	}
	if resp.TLS == nil || resp.TLS.NegotiatedProtocol == "h2" {
		return "", fmt.Errorf("/health was not served over HTTP/1.1 on TLS: %+v", resp.TLS)
	}
	return resp.TLS.PeerCertificates[0].SerialNumber.String(), nil
}

func TestTLSClusterWithMutualTLSOnEveryLink(t *testing.T) {
	p := newPKI(t)
	c := startClusterWith(t, "synod", 3, clusterOptions{
		ClientScheme: "https", PeerScheme: "https", Flags: p.flags(),
		ClientTLS: clientTLS(t, []*x509.Certificate{p.ca.Cert}, p.clientCert, p.clientKey),
	})
	eps := c.Endpoints()
	tlsArgs := []string{"--cacert=" + p.caFile, "--cert=" + p.clientCert, "--key=" + p.clientKey}

	if out, errOut, code := etcdctl(t, eps, append(tlsArgs, "put", "tls-key", "tls-value")...); code != 0 || out != "OK\n" {
		t.Fatalf("etcdctl put over mTLS: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	for _, m := range c.Members { // every member serves the write: it travelled the TLS peer links
		out, errOut, code := etcdctl(t, []string{m.Endpoint}, append(tlsArgs, "get", "tls-key")...)
		if code != 0 || out != "tls-key\ntls-value\n" {
			t.Fatalf("etcdctl get from %s: code %d, stdout %q, stderr %q", m.Name, code, out, errOut)
		}
	}

	fail := []string{"--dial-timeout=2s", "--command-timeout=3s"}
	for name, args := range map[string][]string{
		"client certificate from an unknown CA": {"--cacert=" + p.caFile, "--cert=" + p.strangerCert, "--key=" + p.stranger},
		"no client certificate":                 {"--cacert=" + p.caFile},
		"plaintext to the TLS port":             nil,
	} {
		args := append(append(args, fail...), "put", "refused", name)
		if out, errOut, code := etcdctl(t, eps[:1], args...); code == 0 {
			t.Errorf("%s: etcdctl put succeeded (stdout %q, stderr %q)", name, out, errOut)
		}
	}
	if gr, err := c.Members[0].client(t).Get(t.Context(), "refused"); err != nil || len(gr.Kvs) != 0 {
		t.Fatalf("a refused client wrote: %v %v", gr, err)
	}

	// HTTP/1 endpoints share the TLS port (routed by ALPN); plain HTTP is refused.
	good := clientTLS(t, []*x509.Certificate{p.ca.Cert}, p.clientCert, p.clientKey)
	if _, err := httpsHealth(eps[0], good); err != nil {
		t.Fatalf("/health over TLS: %v", err)
	}
	plain := &http.Client{Timeout: 5 * time.Second}
	if resp, err := plain.Get("http://" + eps[0] + "/health"); err == nil {
		resp.Body.Close()
		t.Fatalf("plain HTTP to the TLS client port answered %s", resp.Status)
	}

	// The peer port demands a certificate of the cluster's CA too.
	peerAddr := strings.TrimPrefix(c.Members[0].PeerURL, "https://")
	stranger := clientTLS(t, []*x509.Certificate{p.ca.Cert}, p.strangerCert, p.stranger)
	if err := tlsExchange(peerAddr, stranger); err == nil {
		t.Fatal("the peer port accepted a certificate from an unknown CA")
	}
	if err := tlsExchange(peerAddr, good); err != nil {
		t.Fatalf("the peer port refused a certificate of the cluster's CA: %v", err)
	}
}

// tlsExchange completes a TLS handshake with addr offering h2 and reads
// the server's first HTTP/2 frame (its SETTINGS), so that a client
// certificate the server rejects after a TLS 1.3 handshake shows as an
// error.
func tlsExchange(addr string, cfg *tls.Config) error {
	cfg = cfg.Clone()
	cfg.NextProtos = []string{"h2"}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")); err != nil {
		return err
	}
	_, err = conn.Read(make([]byte, 9))
	return err
}

func TestTLSCertificateAndCABundleRotateWithoutRestart(t *testing.T) {
	p := newPKI(t)
	c := startClusterWith(t, "synod", 1, clusterOptions{
		ClientScheme: "https", Flags: p.flags(),
		ClientTLS: clientTLS(t, []*x509.Certificate{p.ca.Cert}, p.clientCert, p.clientKey),
	})
	m := c.Members[0]
	good := clientTLS(t, []*x509.Certificate{p.ca.Cert, p.unknownCA.Cert}, p.clientCert, p.clientKey)
	before, err := httpsHealth(m.Endpoint, good)
	if err != nil {
		t.Fatal(err)
	}

	// 1. A new server certificate replaces the old one on disk.
	pair, err := p.ca.Issue("server", "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := pair.Write(p.dir, "server"); err != nil {
		t.Fatal(err)
	}
	var last string
	if err := waitFor(20*time.Second, 100*time.Millisecond, func() (bool, error) {
		serial, err := httpsHealth(m.Endpoint, good)
		last = serial
		return err == nil && serial != before, err
	}); err != nil {
		t.Fatalf("new connections still get certificate %s (was %s): %v", last, before, err)
	}
	tlsArgs := []string{"--cacert=" + p.caFile, "--cert=" + p.clientCert, "--key=" + p.clientKey}
	if out, errOut, code := etcdctl(t, c.Endpoints(), append(tlsArgs, "put", "after-cert-rotation", "1")...); code != 0 {
		t.Fatalf("etcdctl after the certificate rotation: %q %q", out, errOut)
	}

	// 2. The CA bundle is replaced: clients of the new CA get in, those of
	// the old one no longer do.
	stranger := clientTLS(t, []*x509.Certificate{p.ca.Cert}, p.strangerCert, p.stranger)
	if _, err := httpsHealth(m.Endpoint, stranger); err == nil {
		t.Fatal("a client of the unknown CA was accepted before the bundle changed")
	}
	if err := testpki.WriteFile(p.caFile, p.unknownCA.PEM); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(20*time.Second, 100*time.Millisecond, func() (bool, error) {
		_, err := httpsHealth(m.Endpoint, stranger)
		return err == nil, err
	}); err != nil {
		t.Fatalf("the new CA bundle was not picked up: %v", err)
	}
	if _, err := httpsHealth(m.Endpoint, good); err == nil {
		t.Fatal("a client of the CA removed from the bundle is still accepted")
	}
	strangerArgs := []string{"--cacert=" + filepath.Join(p.dir, "server-ca.crt"), "--cert=" + p.strangerCert, "--key=" + p.stranger}
	if err := testpki.WriteFile(filepath.Join(p.dir, "server-ca.crt"), p.ca.PEM); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := etcdctl(t, c.Endpoints(), append(strangerArgs, "get", "after-cert-rotation")...); code != 0 ||
		out != "after-cert-rotation\n1\n" {
		t.Fatalf("etcdctl with a client certificate of the new CA: code %d, %q %q", code, out, errOut)
	}
}

func TestAutoTLSOnClientAndPeerLinks(t *testing.T) {
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	insecure := &tls.Config{InsecureSkipVerify: true} // the generated certificates are self-signed
	c := startClusterWith(t, "synod", 1, clusterOptions{
		ClientScheme: "https", PeerScheme: "https", ClientTLS: insecure,
		Flags: []string{"--auto-tls", "--peer-auto-tls", "--listen-metrics-urls=https://" + metricsAddr},
	})
	m := c.Members[0]
	for _, side := range []string{"client", "peer"} {
		for _, f := range []string{"cert.pem", "key.pem"} {
			if _, err := os.Stat(filepath.Join(m.DataDir, "fixtures", side, f)); err != nil {
				t.Errorf("auto TLS did not write %s/%s: %v", side, f, err)
			}
		}
	}
	if out, errOut, code := etcdctl(t, c.Endpoints(), "--insecure-transport=false", "--insecure-skip-tls-verify", "put", "auto", "tls"); code != 0 || out != "OK\n" {
		t.Fatalf("etcdctl over auto TLS: code %d, %q %q", code, out, errOut)
	}
	if _, err := httpsHealth(metricsAddr, insecure); err != nil {
		t.Fatalf("https metrics listener: %v", err)
	}
	if err := tlsExchange(strings.TrimPrefix(m.PeerURL, "https://"), insecure); err != nil {
		t.Fatalf("the peer port does not speak TLS: %v", err)
	}
}

func TestThreeMembersWithAutoTLSPeers(t *testing.T) {
	c := startClusterWith(t, "synod", 3, clusterOptions{PeerScheme: "https", Flags: []string{"--peer-auto-tls"}})
	if out, errOut, code := etcdctl(t, c.Endpoints(), "put", "k", "v"); code != 0 || out != "OK\n" {
		t.Fatalf("put: code %d, %q %q", code, out, errOut)
	}
	c.WaitConverged(30 * time.Second)
}

// TestTLSMemberJoinsOverPeerTLS adds a member to a TLS cluster: the joiner
// fetches the membership over the TLS peer link with its certificate, then
// catches up and serves.
func TestTLSMemberJoinsOverPeerTLS(t *testing.T) {
	p := newPKI(t)
	ctls := clientTLS(t, []*x509.Certificate{p.ca.Cert}, p.clientCert, p.clientKey)
	c := startClusterWith(t, "synod", 1, clusterOptions{
		ClientScheme: "https", PeerScheme: "https", ClientTLS: ctls,
		Flags: append(p.flags(), "--strict-reconfig-check=false"),
	})
	m0 := c.Members[0]
	ports, err := freePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	m1 := &Member{
		Index: 1, Name: "m1", Bin: m0.Bin, TLS: ctls,
		ClientURL: fmt.Sprintf("https://127.0.0.1:%d", ports[0]),
		PeerURL:   fmt.Sprintf("https://127.0.0.1:%d", ports[1]),
		Endpoint:  fmt.Sprintf("127.0.0.1:%d", ports[0]),
		DataDir:   filepath.Join(filepath.Dir(m0.DataDir), "m1.data"),
		LogPath:   filepath.Join(filepath.Dir(m0.LogPath), "m1.log"),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := m0.client(t).MemberAdd(ctx, []string{m1.PeerURL}); err != nil {
		t.Fatalf("member add: %v", err)
	}
	m1.Args = append([]string{"serve", "--name=m1", "--data-dir=" + m1.DataDir,
		"--listen-client-urls=" + m1.ClientURL, "--advertise-client-urls=" + m1.ClientURL,
		"--listen-peer-urls=" + m1.PeerURL, "--initial-advertise-peer-urls=" + m1.PeerURL,
		"--initial-cluster=m0=" + m0.PeerURL + ",m1=" + m1.PeerURL, "--initial-cluster-state=existing",
	}, p.flags()...)
	c.Members = append(c.Members, m1)
	if err := m1.start(); err != nil {
		t.Fatal(err)
	}
	if err := c.waitMemberReady(m1, startTimeout); err != nil {
		t.Fatal(err)
	}
	if _, err := m0.client(t).Put(ctx, "joined", "yes"); err != nil {
		t.Fatal(err)
	}
	c.WaitConverged(30 * time.Second)
	gr, err := m1.client(t).Get(ctx, "joined", clientv3.WithSerializable())
	if err != nil || len(gr.Kvs) != 1 || string(gr.Kvs[0].Value) != "yes" {
		t.Fatalf("the joined member's local read: %v, %v", gr, err)
	}
}
