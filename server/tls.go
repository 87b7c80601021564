package server

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"time"

	"github.com/synod-db/synod/tlsconfig"
)

// tlsOptions parses --cipher-suites, --tls-min-version and --tls-max-version.
func (c *Config) tlsOptions() (tlsconfig.Options, error) {
	v := c.TLSMinVersion
	if v == "" {
		v = tlsconfig.DefaultMinVersion
	}
	minVersion, err := tlsconfig.ParseVersion(v)
	if err != nil {
		return tlsconfig.Options{}, fmt.Errorf("%w: --tls-min-version: %w", ErrConfig, err)
	}
	var maxVersion uint16
	if c.TLSMaxVersion != "" {
		if maxVersion, err = tlsconfig.ParseVersion(c.TLSMaxVersion); err != nil {
			return tlsconfig.Options{}, fmt.Errorf("%w: --tls-max-version: %w", ErrConfig, err)
		}
		if maxVersion < minVersion {
			return tlsconfig.Options{}, fmt.Errorf("%w: min version (%s) is greater than max version (%s)", ErrConfig, v, c.TLSMaxVersion)
		}
	}
	suites, err := tlsconfig.ParseCipherSuites(c.CipherSuites)
	if err != nil {
		return tlsconfig.Options{}, fmt.Errorf("%w: --cipher-suites: %w", ErrConfig, err)
	}
	if minVersion == tls.VersionTLS13 && len(suites) > 0 {
		return tlsconfig.Options{}, fmt.Errorf("%w: cipher suites cannot be configured when only TLS1.3 is enabled", ErrConfig)
	}
	return tlsconfig.Options{CipherSuites: suites, MinVersion: minVersion, MaxVersion: maxVersion,
		ReloadInterval: c.TLSReloadInterval, SelfCertValidity: time.Duration(c.SelfSignedCertValidity) * 365 * 24 * time.Hour}, nil
}

// secureURL reports whether a listen or peer URL asks for TLS.
func secureURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "https" || u.Scheme == "unixs")
}

// memberTLS is a member's loaded certificate files; either may be nil.
type memberTLS struct {
	client, peer *tlsconfig.Files
	// peerServerName, when set, is the name peer certificates are verified
	// against instead of each peer's host (etcd's SRV discovery of https
	// peers without --peer-trusted-ca-file: server/discover.go).
	peerServerName string
}

// loadTLS generates the auto-TLS certificates if asked, loads the
// certificate files, and checks that every https:// listener has a
// certificate, with etcd's messages.
func loadTLS(c *Config, log *slog.Logger) (memberTLS, error) {
	opts, err := c.tlsOptions()
	if err != nil {
		return memberTLS{}, err
	}
	opts.Logger = log
	var out memberTLS
	if out.client, err = loadSide(c.ClientTLS, "client", append(c.ListenClientURLs, c.ListenMetricsURLs...), c.DataDir, opts); err != nil {
		return memberTLS{}, err
	}
	if out.peer, err = loadSide(c.PeerTLS, "peer", c.ListenPeerURLs, c.DataDir, opts); err != nil {
		return memberTLS{}, err
	}
	for _, u := range append(c.ListenClientURLs, c.ListenMetricsURLs...) {
		if secureURL(u) && out.client == nil {
			return memberTLS{}, fmt.Errorf("%w: TLS key/cert (--cert-file, --key-file) must be provided for client url %s with HTTPS scheme", ErrConfig, u)
		}
	}
	for _, u := range c.ListenPeerURLs {
		if secureURL(u) && out.peer == nil {
			return memberTLS{}, fmt.Errorf("%w: TLS key/cert (--peer-cert-file, --peer-key-file) must be provided for peer url %s with HTTPS scheme", ErrConfig, u)
		}
	}
	return out, nil
}

// loadSide loads one side's files (nil if it has none), generating a
// self-signed pair under <data-dir>/fixtures/<side> for auto TLS, as etcd
// does, when no certificate was given.
func loadSide(info tlsconfig.Info, side string, urls []string, dataDir string, opts tlsconfig.Options) (*tlsconfig.Files, error) {
	flag := map[string]string{"client": "--cert-file/--key-file", "peer": "--peer-cert-file/--peer-key-file"}[side]
	if !info.Empty() && info.AutoTLS {
		// As etcd: given certificates win, and are verified as usual.
		opts.Logger.Warn("ignoring " + side + " auto TLS since certs given")
		info.AutoTLS = false
	}
	if info.Empty() && info.AutoTLS {
		var hosts []string
		for _, raw := range urls {
			if u, err := url.Parse(raw); err == nil {
				hosts = append(hosts, u.Host)
			}
		}
		var err error
		if info.CertFile, info.KeyFile, err = tlsconfig.SelfCert(filepath.Join(dataDir, "fixtures", side), hosts, opts.SelfCertValidity); err != nil {
			return nil, err
		}
	} else if info.Empty() {
		if info.TrustedCAFile != "" || info.ClientCertAuth {
			return nil, fmt.Errorf("%w: %s TLS: a trusted CA file or client cert auth needs %s", ErrConfig, side, flag)
		}
		return nil, nil
	}
	f, err := tlsconfig.Load(info, opts)
	if err != nil {
		return nil, fmt.Errorf("%w: %s TLS (%s): %w", ErrConfig, side, flag, err)
	}
	return f, nil
}

// peerDialTLS is the peer transport's TLS configuration per dial: the peer
// certificate and CA bundle when given, else Go's defaults.
func (t memberTLS) peerDialTLS() func(serverName string) *tls.Config {
	if t.peer == nil {
		return nil
	}
	if name := t.peerServerName; name != "" {
		return func(string) *tls.Config { return t.peer.ClientConfig(name) }
	}
	return func(serverName string) *tls.Config { return t.peer.ClientConfig(serverName) }
}

// secureListener wraps ln in TLS with f's server configuration.
func secureListener(ln net.Listener, f *tlsconfig.Files, nextProtos ...string) net.Listener {
	return tls.NewListener(ln, f.ServerConfig(nextProtos...))
}
