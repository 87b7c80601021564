package tlsconfig

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// ErrRevoked is returned to a handshake whose peer certificate the CRL
// file revokes.
var ErrRevoked = errors.New("tlsconfig: certificate revoked by the CRL")

// ErrNotAllowed is returned to a handshake whose peer certificate has none
// of the allowed common names or host names.
var ErrNotAllowed = errors.New("tlsconfig: certificate not allowed")

// revoked is the set of serial numbers a CRL revokes (as decimal strings).
type revoked map[string]bool

// loadCRL reads a CRL file, PEM ("X509 CRL") or DER.
func loadCRL(path string) (revoked, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTLS, err)
	}
	if blk, _ := pem.Decode(b); blk != nil {
		b = blk.Bytes
	}
	rl, err := x509.ParseRevocationList(b)
	if err != nil {
		return nil, fmt.Errorf("%w: CRL file %s: %w", ErrTLS, path, err)
	}
	out := revoked{}
	for _, e := range rl.RevokedCertificateEntries {
		out[e.SerialNumber.String()] = true
	}
	return out, nil
}

// verifyPeer runs after Go's own verification of the other side: it
// refuses a certificate the current CRL revokes, and one that has none of
// the allowed common names or host names. A side that presents no
// certificate (allowed when client certificates are not required) passes.
func (f *Files) verifyPeer(rawCerts [][]byte, chains [][]*x509.Certificate) error {
	if len(rawCerts) == 0 {
		return nil
	}
	var leaf *x509.Certificate
	if len(chains) > 0 && len(chains[0]) > 0 {
		leaf = chains[0][0]
	} else {
		c, err := x509.ParseCertificate(rawCerts[0])
		if err != nil {
			return err
		}
		leaf = c
	}
	if crl := f.current().crl; crl != nil {
		for _, raw := range rawCerts {
			c, err := x509.ParseCertificate(raw)
			if err != nil {
				return err
			}
			if crl[c.SerialNumber.String()] {
				return fmt.Errorf("%w: serial %s (%s)", ErrRevoked, c.SerialNumber, c.Subject.CommonName)
			}
		}
	}
	return f.checkAllowed(leaf)
}

// checkAllowed applies AllowedCNs or AllowedHostnames to leaf.
func (f *Files) checkAllowed(leaf *x509.Certificate) error {
	switch {
	case len(f.allowedCNs) > 0:
		if !slices.Contains(f.allowedCNs, leaf.Subject.CommonName) {
			return fmt.Errorf("%w: common name %q is not one of %v", ErrNotAllowed, leaf.Subject.CommonName, f.allowedCNs)
		}
	case len(f.allowedHosts) > 0:
		for _, h := range f.allowedHosts {
			if leaf.VerifyHostname(h) == nil {
				return nil
			}
		}
		return fmt.Errorf("%w: certificate of %q is valid for none of %v", ErrNotAllowed, leaf.Subject.CommonName, f.allowedHosts)
	}
	return nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
