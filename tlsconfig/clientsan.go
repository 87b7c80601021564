package tlsconfig

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"time"
)

// sanLookupTimeout bounds the DNS lookups of one client SAN check.
const sanLookupTimeout = 5 * time.Second

// checkClientSAN is etcd's check of a peer's client certificate: a
// certificate with IP or DNS SANs must name the address the connection
// comes from, directly or through a DNS name that resolves to it. A
// certificate with no SANs passes.
func checkClientSAN(cert *x509.Certificate, remote net.Addr) error {
	if len(cert.IPAddresses) == 0 && len(cert.DNSNames) == 0 {
		return nil
	}
	host, _, err := net.SplitHostPort(remote.String())
	if err != nil {
		return fmt.Errorf("%w: remote address %s: %w", ErrNotAllowed, remote, err)
	}
	ip := net.ParseIP(host)
	for _, a := range cert.IPAddresses {
		if a.Equal(ip) {
			return nil
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), sanLookupTimeout)
	defer cancel()
	for _, name := range cert.DNSNames {
		addrs, err := net.DefaultResolver.LookupIPAddr(ctx, name)
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if a.IP.Equal(ip) {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: client certificate of %q is not valid for its address %s (IP SANs %v, DNS SANs %v)",
		ErrNotAllowed, cert.Subject.CommonName, host, cert.IPAddresses, cert.DNSNames)
}
