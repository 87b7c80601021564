package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/synod-db/synod/internal/testpki"
	"github.com/synod-db/synod/tlsconfig"
)

func TestServeTLSFlagsAndEnvironment(t *testing.T) {
	c, err := parseServe(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.ClientTLS != (tlsconfig.Info{}) || c.PeerTLS != (tlsconfig.Info{VerifyClientSAN: true}) || c.TLSMinVersion != "TLS1.2" || c.CipherSuites != "" {
		t.Fatalf("TLS is off by default with etcd's minimum version: %+v %+v %q %q", c.ClientTLS, c.PeerTLS, c.TLSMinVersion, c.CipherSuites)
	}
	c, err = parseServe(t, []string{
		"--cert-file=/c.crt", "--key-file=/c.key", "--client-cert-auth",
		"--peer-cert-file=/p.crt", "--peer-auto-tls", "--tls-min-version=TLS1.3",
	}, map[string]string{
		"ETCD_TRUSTED_CA_FILE": "/ca.crt", "SYNOD_AUTO_TLS": "true",
		"ETCD_PEER_KEY_FILE": "/p.key", "SYNOD_PEER_TRUSTED_CA_FILE": "/pca.crt", "ETCD_PEER_CLIENT_CERT_AUTH": "true",
		"SYNOD_CIPHER_SUITES": "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
	})
	if err != nil {
		t.Fatal(err)
	}
	wantClient := tlsconfig.Info{CertFile: "/c.crt", KeyFile: "/c.key", TrustedCAFile: "/ca.crt", ClientCertAuth: true, AutoTLS: true}
	wantPeer := tlsconfig.Info{CertFile: "/p.crt", KeyFile: "/p.key", TrustedCAFile: "/pca.crt", ClientCertAuth: true, AutoTLS: true, VerifyClientSAN: true}
	if c.ClientTLS != wantClient || c.PeerTLS != wantPeer {
		t.Errorf("client %+v, want %+v\npeer %+v, want %+v", c.ClientTLS, wantClient, c.PeerTLS, wantPeer)
	}
	if c.TLSMinVersion != "TLS1.3" || c.CipherSuites != "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" {
		t.Errorf("min version %q, cipher suites %q", c.TLSMinVersion, c.CipherSuites)
	}
}

func TestServeTLSBadValues(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--tls-min-version=TLS1.1"}, nil, `--tls-min-version: unexpected TLS version "TLS1.1" (must be one of: TLS1.2, TLS1.3)`},
		{nil, map[string]string{"ETCD_TLS_MIN_VERSION": "SSLv3"}, `unexpected TLS version "SSLv3"`},
		{[]string{"--cipher-suites=TLS_RSA_WITH_RC4_128_MD5"}, nil, `--cipher-suites: unexpected TLS cipher suite "TLS_RSA_WITH_RC4_128_MD5"`},
		{[]string{"--tls-min-version=TLS1.3", "--cipher-suites=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"}, nil,
			"cipher suites cannot be configured when only TLS1.3 is enabled"},
		{nil, map[string]string{"SYNOD_CLIENT_CERT_AUTH": "maybe"}, `invalid value "maybe" for SYNOD_CLIENT_CERT_AUTH`},
	} {
		t.Run(tc.want, func(t *testing.T) { // a subtest: its environment is restored after it
			c, err := parseServe(t, tc.args, tc.env)
			if err == nil {
				err = c.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v %v: err %v, want %q", tc.args, tc.env, err, tc.want)
			}
		})
	}
}

// TestServeFailsAtStartupOnBadCertificates runs the serve command itself:
// each bad certificate setup must end it with exit status 1 and a message
// naming the problem, before it opens its data directory.
func TestServeFailsAtStartupOnBadCertificates(t *testing.T) {
	dir := t.TempDir()
	ca, err := testpki.NewCA("ca")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.Issue("server", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := pair.Write(dir, "server")
	if err != nil {
		t.Fatal(err)
	}
	other, err := ca.Issue("other", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	_, otherKey, err := other.Write(dir, "other")
	if err != nil {
		t.Fatal(err)
	}
	unreadable := filepath.Join(dir, "unreadable.key") // a directory: unreadable even for root
	if err := os.Mkdir(unreadable, 0o700); err != nil {
		t.Fatal(err)
	}
	https := []string{"--listen-client-urls=https://127.0.0.1:0", "--advertise-client-urls=https://127.0.0.1:0"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"https without a certificate", https, "TLS key/cert (--cert-file, --key-file) must be provided for client url https://127.0.0.1:0 with HTTPS scheme"},
		{"missing cert file", append([]string{"--cert-file=" + filepath.Join(dir, "nope.crt"), "--key-file=" + key}, https...), "nope.crt: no such file or directory"},
		{"mismatched key", []string{"--cert-file=" + cert, "--key-file=" + otherKey}, "private key does not match public key"},
		{"key without cert", []string{"--peer-key-file=" + key}, "needs both a cert file and a key file"},
		{"unreadable key", []string{"--peer-cert-file=" + cert, "--peer-key-file=" + unreadable}, "unreadable.key: is a directory"},
		{"https peer without a certificate", []string{"--listen-peer-urls=https://127.0.0.1:0", "--initial-advertise-peer-urls=https://127.0.0.1:0"},
			"must be provided for peer url https://127.0.0.1:0"},
		{"CA without certificate", []string{"--trusted-ca-file=" + cert}, "a trusted CA file or client cert auth needs --cert-file/--key-file"},
	} {
		dataDir := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
		var stdout, stderr bytes.Buffer
		args := append([]string{"--data-dir=" + dataDir, "--listen-peer-urls=http://127.0.0.1:0", "--initial-advertise-peer-urls=http://127.0.0.1:0",
			"--listen-client-urls=http://127.0.0.1:0", "--advertise-client-urls=http://127.0.0.1:0"}, tc.args...)
		code := runServe(args, &stdout, &stderr)
		if code != 1 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit 1 and %q", tc.name, code, stderr.String(), tc.want)
		}
		if _, err := os.Stat(filepath.Join(dataDir, "db")); err == nil {
			t.Errorf("%s: the data directory was opened before the certificates were checked", tc.name)
		}
	}
}

// etcd's client certificate flags: the certificate a member dials with, and
// the host names a client certificate must be valid for.
func TestServeClientCertificateFlags(t *testing.T) {
	c, err := parseServe(t, []string{"--client-cert-file=/cc.crt", "--client-key-file=/cc.key",
		"--client-cert-allowed-hostname=a.example,b.example", "--self-signed-cert-validity=3"},
		map[string]string{"ETCD_PEER_CLIENT_CERT_FILE": "/pc.crt", "ETCD_PEER_CLIENT_KEY_FILE": "/pc.key"})
	if err != nil {
		t.Fatal(err)
	}
	if c.ClientTLS.ClientCertFile != "/cc.crt" || c.ClientTLS.ClientKeyFile != "/cc.key" || c.ClientTLS.AllowedHostname != "a.example,b.example" ||
		c.PeerTLS.ClientCertFile != "/pc.crt" || c.PeerTLS.ClientKeyFile != "/pc.key" || c.SelfSignedCertValidity != 3 || !c.PeerTLS.VerifyClientSAN {
		t.Fatalf("client %+v, peer %+v, validity %d", c.ClientTLS, c.PeerTLS, c.SelfSignedCertValidity)
	}
}

func TestServePeerSkipClientSANVerification(t *testing.T) {
	c, err := parseServe(t, []string{"--peer-skip-client-san-verification"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.PeerTLS.VerifyClientSAN || c.ClientTLS.VerifyClientSAN {
		t.Fatalf("peer %+v, client %+v", c.PeerTLS, c.ClientTLS)
	}
	c, err = parseServe(t, []string{"--config-file=" + writeConfig(t, "peer-transport-security:\n  skip-client-san-verification: true\n")}, nil)
	if err != nil || c.PeerTLS.VerifyClientSAN {
		t.Fatalf("from the file: %+v, %v", c.PeerTLS, err)
	}
}
