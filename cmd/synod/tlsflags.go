package main

import (
	"flag"

	"github.com/synod-db/synod/server"
)

// bindTLSFlags binds etcd's security flags to c (see docs/security.md).
func bindTLSFlags(fs *flag.FlagSet, c *server.Config) {
	cl, pe := &c.ClientTLS, &c.PeerTLS
	fs.StringVar(&cl.CertFile, "cert-file", "", "Path to the client server TLS cert file.")
	fs.StringVar(&cl.KeyFile, "key-file", "", "Path to the client server TLS key file.")
	fs.StringVar(&cl.TrustedCAFile, "trusted-ca-file", "", "Path to the client server TLS trusted CA cert file (reloaded when it changes).")
	fs.BoolVar(&cl.ClientCertAuth, "client-cert-auth", false, "Enable client cert authentication.")
	fs.BoolVar(&cl.AutoTLS, "auto-tls", false, "Client TLS using generated certificates.")
	fs.StringVar(&pe.CertFile, "peer-cert-file", "", "Path to the peer server TLS cert file.")
	fs.StringVar(&pe.KeyFile, "peer-key-file", "", "Path to the peer server TLS key file.")
	fs.StringVar(&pe.TrustedCAFile, "peer-trusted-ca-file", "", "Path to the peer server TLS trusted CA file (reloaded when it changes).")
	fs.BoolVar(&pe.ClientCertAuth, "peer-client-cert-auth", false, "Enable peer client cert authentication.")
	fs.BoolVar(&pe.AutoTLS, "peer-auto-tls", false, "Peer TLS using generated certificates.")
	fs.StringVar(&c.CipherSuites, "cipher-suites", "", "Comma-separated list of supported TLS cipher suites between client/server and peers (empty will be auto-populated by Go).")
	fs.StringVar(&c.TLSMinVersion, "tls-min-version", c.TLSMinVersion, "Minimum TLS version supported by synod. Possible values: TLS1.2, TLS1.3.")
	fs.StringVar(&c.TLSMaxVersion, "tls-max-version", "", "Maximum TLS version supported by synod. Possible values: TLS1.2, TLS1.3 (empty: Go's highest).")
	fs.StringVar(&cl.CRLFile, "client-crl-file", "", "Path to the client certificate revocation list file (reloaded when it changes).")
	fs.StringVar(&pe.CRLFile, "peer-crl-file", "", "Path to the peer certificate revocation list file (reloaded when it changes).")
	fs.StringVar(&pe.AllowedCN, "peer-cert-allowed-cn", "", "Comma-separated common names a peer's certificate must have one of.")
	fs.StringVar(&pe.AllowedHostname, "peer-cert-allowed-hostname", "", "Comma-separated host names a peer's certificate must be valid for one of.")
	fs.StringVar(&cl.AllowedHostname, "client-cert-allowed-hostname", "", "Comma-separated list of SAN hostnames for client cert authentication.")
	fs.StringVar(&cl.ClientCertFile, "client-cert-file", "", "Path to an explicit client TLS cert file, presented when this member dials as a client; otherwise cert file is used.")
	fs.StringVar(&cl.ClientKeyFile, "client-key-file", "", "Path to an explicit client TLS key file; otherwise key file is used.")
	fs.StringVar(&pe.ClientCertFile, "peer-client-cert-file", "", "Path to an explicit peer client TLS cert file, presented when dialing peers; otherwise peer cert file is used.")
	fs.StringVar(&pe.ClientKeyFile, "peer-client-key-file", "", "Path to an explicit peer client TLS key file; otherwise peer key file is used.")
	pe.VerifyClientSAN = true
	fs.Var((*negatedBool)(&pe.VerifyClientSAN), "peer-skip-client-san-verification", "Skip verification of SAN field in client certificate for peer connections.")
}
