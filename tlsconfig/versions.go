package tlsconfig

import (
	"crypto/tls"
	"fmt"
	"strings"
)

// DefaultMinVersion is etcd's default --tls-min-version.
const DefaultMinVersion = "TLS1.2"

// ParseVersion maps a --tls-min-version value (etcd's names: TLS1.2,
// TLS1.3) to its crypto/tls constant.
func ParseVersion(s string) (uint16, error) {
	switch s {
	case "TLS1.2":
		return tls.VersionTLS12, nil
	case "TLS1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("unexpected TLS version %q (must be one of: TLS1.2, TLS1.3)", s)
}

// ParseCipherSuites maps a comma-separated --cipher-suites list (Go's
// names, as etcd accepts them, plus etcd's two short CHACHA20 aliases) to
// cipher suite IDs. An empty list means Go's defaults.
func ParseCipherSuites(list string) ([]uint16, error) {
	var out []uint16
	for _, name := range strings.Split(list, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		id, ok := cipherSuite(name)
		if !ok {
			return nil, fmt.Errorf("unexpected TLS cipher suite %q", name)
		}
		out = append(out, id)
	}
	return out, nil
}

func cipherSuite(name string) (uint16, bool) {
	for _, c := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		if c.Name == name {
			return c.ID, true
		}
	}
	switch name {
	case "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305":
		return tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, true
	case "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305":
		return tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, true
	}
	return 0, false
}
