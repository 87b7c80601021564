package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// DefaultReloadInterval is how often, at most, the files are checked for a
// change.
const DefaultReloadInterval = time.Second

// ErrTLS is wrapped by every error about certificate flags or files.
var ErrTLS = errors.New("invalid TLS configuration")

// Info is one side's (client or peer) certificate flags.
type Info struct {
	CertFile       string // --cert-file / --peer-cert-file
	KeyFile        string // --key-file / --peer-key-file
	TrustedCAFile  string // --trusted-ca-file / --peer-trusted-ca-file
	ClientCertAuth bool   // --client-cert-auth / --peer-client-cert-auth
	AutoTLS        bool   // --auto-tls / --peer-auto-tls
	// CRLFile is --client-crl-file / --peer-crl-file: certificates it
	// revokes are refused (reloaded like the other files).
	CRLFile string
	// AllowedCN and AllowedHostname are --peer-cert-allowed-cn and
	// --peer-cert-allowed-hostname, comma-separated: the other side's
	// verified certificate must have one of these common names, or be
	// valid for one of these host names. At most one of the two may be set.
	AllowedCN, AllowedHostname string
	// ClientCertFile and ClientKeyFile are --client-cert-file and
	// --client-key-file (--peer-client-cert-file, --peer-client-key-file):
	// the certificate this member presents when it dials as a client. Empty:
	// CertFile and KeyFile serve both ends.
	ClientCertFile, ClientKeyFile string
	// VerifyClientSAN makes a listener refuse a client certificate whose
	// IP or DNS SANs do not name the address the connection comes from, as
	// etcd checks its peers unless --peer-skip-client-san-verification.
	VerifyClientSAN bool
}

// Empty reports whether no certificate was given.
func (i Info) Empty() bool { return i.CertFile == "" && i.KeyFile == "" }

// Options are the settings both sides share.
type Options struct {
	CipherSuites   []uint16      // --cipher-suites; nil means Go's defaults
	MinVersion     uint16        // --tls-min-version; 0 means TLS 1.2
	MaxVersion     uint16        // --tls-max-version; 0 means Go's highest (TLS 1.3)
	ReloadInterval time.Duration // 0 means DefaultReloadInterval
	// SelfCertValidity is how long certificates SelfCert generates are
	// valid (--self-signed-cert-validity); 0 means one year.
	SelfCertValidity time.Duration
	Logger           *slog.Logger // reload failures; nil discards
}

// Files is one side's certificate, key and CA bundle, reloaded from disk
// when they change (see the package documentation). It is safe for
// concurrent use.
type Files struct {
	info                     Info
	opts                     Options
	skipVerify               bool     // auto TLS: the other side's self-signed certificate cannot be verified
	allowedCNs, allowedHosts []string // Info.AllowedCN, Info.AllowedHostname split
	log                      *slog.Logger

	mu      sync.Mutex
	checked time.Time
	stamp   stamps
	cur     *material
}

// material is what one load of the files produced.
type material struct {
	cert *tls.Certificate
	// clientCert is presented when dialing: the client cert file's, else cert.
	clientCert *tls.Certificate
	pool       *x509.CertPool // nil without a CA file
	crl        revoked        // nil without a CRL file
}

// stamp identifies one version of a file.
type stamp struct {
	size int64
	mod  time.Time
}

type stamps [6]stamp

// Load checks info and reads its files once; errors name the flag and the
// file. info must have a certificate (generate one with SelfCert for auto
// TLS first).
func Load(info Info, opts Options) (*Files, error) {
	if info.CertFile == "" || info.KeyFile == "" {
		return nil, fmt.Errorf("%w: a certificate needs both a cert file and a key file (got cert %q, key %q)",
			ErrTLS, info.CertFile, info.KeyFile)
	}
	if (info.ClientCertFile == "") != (info.ClientKeyFile == "") {
		return nil, fmt.Errorf("%w: a client certificate needs both a client cert file and a client key file (got cert %q, key %q)",
			ErrTLS, info.ClientCertFile, info.ClientKeyFile)
	}
	if info.ClientCertAuth && info.TrustedCAFile == "" {
		return nil, fmt.Errorf("%w: client certificate authentication needs a trusted CA file", ErrTLS)
	}
	if opts.MinVersion == 0 {
		opts.MinVersion = tls.VersionTLS12
	}
	if opts.MinVersion == tls.VersionTLS13 && len(opts.CipherSuites) > 0 {
		return nil, fmt.Errorf("%w: cipher suites cannot be configured when only TLS1.3 is enabled", ErrTLS)
	}
	if opts.MaxVersion != 0 && opts.MaxVersion < opts.MinVersion {
		return nil, fmt.Errorf("%w: min version (%s) is greater than max version (%s)", ErrTLS,
			tls.VersionName(opts.MinVersion), tls.VersionName(opts.MaxVersion))
	}
	if info.AllowedCN != "" && info.AllowedHostname != "" {
		return nil, fmt.Errorf("%w: allowed common names and allowed host names cannot both be set", ErrTLS)
	}
	if opts.ReloadInterval <= 0 {
		opts.ReloadInterval = DefaultReloadInterval
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Files{info: info, opts: opts, skipVerify: info.AutoTLS, log: log,
		allowedCNs: splitList(info.AllowedCN), allowedHosts: splitList(info.AllowedHostname)}
	st, err := f.stamps()
	if err != nil {
		return nil, err
	}
	m, err := f.load()
	if err != nil {
		return nil, err
	}
	f.cur, f.stamp, f.checked = m, st, time.Now()
	return f, nil
}

// Info returns the flags f was loaded from.
func (f *Files) Info() Info { return f.info }

func (f *Files) paths() [6]string {
	return [6]string{f.info.CertFile, f.info.KeyFile, f.info.TrustedCAFile, f.info.CRLFile,
		f.info.ClientCertFile, f.info.ClientKeyFile}
}

func (f *Files) stamps() (stamps, error) {
	var out stamps
	for i, p := range f.paths() {
		if p == "" {
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			return out, fmt.Errorf("%w: %w", ErrTLS, err)
		}
		out[i] = stamp{size: fi.Size(), mod: fi.ModTime()}
	}
	return out, nil
}

func (f *Files) load() (*material, error) {
	cert, err := tls.LoadX509KeyPair(f.info.CertFile, f.info.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("%w: cert %s, key %s: %w", ErrTLS, f.info.CertFile, f.info.KeyFile, err)
	}
	m := &material{cert: &cert, clientCert: &cert}
	if f.info.ClientCertFile != "" {
		cc, err := tls.LoadX509KeyPair(f.info.ClientCertFile, f.info.ClientKeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: client cert %s, client key %s: %w", ErrTLS, f.info.ClientCertFile, f.info.ClientKeyFile, err)
		}
		m.clientCert = &cc
	}
	if f.info.CRLFile != "" {
		if m.crl, err = loadCRL(f.info.CRLFile); err != nil {
			return nil, err
		}
	}
	if f.info.TrustedCAFile == "" {
		return m, nil
	}
	pem, err := os.ReadFile(f.info.TrustedCAFile)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTLS, err)
	}
	m.pool = x509.NewCertPool()
	if !m.pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%w: trusted CA file %s holds no PEM certificate", ErrTLS, f.info.TrustedCAFile)
	}
	return m, nil
}

// current returns the loaded material, reloading it first if the check
// interval passed and a file changed. A failed reload keeps the old
// material and is retried at the next check.
func (f *Files) current() *material {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	if now.Sub(f.checked) < f.opts.ReloadInterval {
		return f.cur
	}
	f.checked = now
	st, err := f.stamps()
	if err == nil && st == f.stamp {
		return f.cur
	}
	var m *material
	if err == nil {
		m, err = f.load()
	}
	if err != nil {
		f.log.Warn("TLS files changed but do not load; keeping the previous certificate", "err", err)
		return f.cur
	}
	f.log.Info("reloaded TLS files", "cert", f.info.CertFile, "ca", f.info.TrustedCAFile)
	f.cur, f.stamp = m, st
	return m
}

// ServerConfig returns the configuration of a listener: every handshake
// takes the current certificate and, with ClientCertAuth, verifies the
// client against the current CA bundle. nextProtos are offered for ALPN.
func (f *Files) ServerConfig(nextProtos ...string) *tls.Config {
	base := f.baseConfig(nextProtos)
	outer := base.Clone()
	outer.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		m := f.current()
		c := base.Clone()
		c.Certificates = []tls.Certificate{*m.cert}
		if f.info.ClientCertAuth {
			c.ClientAuth = tls.RequireAndVerifyClientCert
			c.ClientCAs = m.pool
		}
		if f.info.VerifyClientSAN && hello.Conn != nil {
			remote := hello.Conn.RemoteAddr()
			c.VerifyConnection = func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 {
					return nil
				}
				return checkClientSAN(cs.PeerCertificates[0], remote)
			}
		}
		return c, nil
	}
	return outer
}

// ClientConfig returns the configuration of one outgoing connection to
// serverName (a member dialing a peer): the current certificate as the
// client certificate (the client cert file's when given) and the current CA bundle (the system's without a CA
// file) to verify the server. With auto TLS the server is not verified, as
// in etcd: its certificate is self-signed.
func (f *Files) ClientConfig(serverName string, nextProtos ...string) *tls.Config {
	m := f.current()
	c := f.baseConfig(nextProtos)
	c.ServerName = serverName
	c.Certificates = []tls.Certificate{*m.clientCert}
	c.RootCAs = m.pool
	c.InsecureSkipVerify = f.skipVerify && m.pool == nil
	return c
}

func (f *Files) baseConfig(nextProtos []string) *tls.Config {
	return &tls.Config{
		MinVersion:            f.opts.MinVersion,
		MaxVersion:            f.opts.MaxVersion,
		CipherSuites:          f.opts.CipherSuites,
		NextProtos:            nextProtos,
		VerifyPeerCertificate: f.verifyPeer,
	}
}
