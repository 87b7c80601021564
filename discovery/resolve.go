// Package discovery finds the founding members of a new cluster the ways
// etcd does: DNS SRV records (--discovery-srv) and etcd's v3 discovery
// service (--discovery-endpoints, --discovery-token). Both answer with an
// --initial-cluster value and the cluster token to bootstrap with.
package discovery

import (
	"context"
	"errors"
	"net"
	"net/url"
	"slices"
	"strconv"
)

// Resolver is the part of *net.Resolver discovery uses. net.DefaultResolver
// serves production; tests pass a resolver that asks their own DNS server.
type Resolver interface {
	LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// UseDNSServer returns a resolver (Go's own) that sends every query to the
// DNS server at addr (host:port, UDP) instead of the system's. It is how
// tests point synod at a DNS server of their own.
func UseDNSServer(addr string) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
}

// errBadPort is a port that is not a number.
var errBadPort = errors.New("invalid port")

// resolveTCP resolves host:port to the address net.ResolveTCPAddr would
// give (the first IPv4 address, else the first), through r, in the form
// of net.TCPAddr's String. etcd compares peers by this form.
func resolveTCP(ctx context.Context, r Resolver, hostport string) (string, error) {
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return "", &net.AddrError{Err: errBadPort.Error(), Addr: hostport}
	}
	if ip := net.ParseIP(host); ip != nil {
		return (&net.TCPAddr{IP: ip, Port: int(port)}).String(), nil
	}
	addrs, err := r.LookupIPAddr(ctx, host)
	if err != nil {
		return "", err
	}
	if len(addrs) == 0 {
		return "", &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	pick := addrs[0]
	for _, a := range addrs {
		if a.IP.To4() != nil {
			pick = a
			break
		}
	}
	return (&net.TCPAddr{IP: pick.IP, Port: int(port), Zone: pick.Zone}).String(), nil
}

// SameAddresses reports whether two lists of URLs name the same schemes
// and resolved addresses, in any order, as etcd compares a member's
// advertised peer URLs with those the cluster lists for it.
func SameAddresses(ctx context.Context, r Resolver, a, b []string) bool {
	if r == nil {
		r = net.DefaultResolver
	}
	ra, erra := resolvedURLs(ctx, r, a)
	rb, errb := resolvedURLs(ctx, r, b)
	return erra == nil && errb == nil && slices.Equal(ra, rb)
}

// resolvedURLs is scheme://address for each URL, sorted.
func resolvedURLs(ctx context.Context, r Resolver, urls []string) ([]string, error) {
	out := make([]string, 0, len(urls))
	for _, raw := range urls {
		u, addr, err := resolveURL(ctx, r, raw)
		if err != nil {
			return nil, err
		}
		out = append(out, u.Scheme+"://"+addr)
	}
	slices.Sort(out)
	return out, nil
}

// resolveURL parses raw and resolves its host:port (resolveTCP).
func resolveURL(ctx context.Context, r Resolver, raw string) (*url.URL, string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, "", err
	}
	addr, err := resolveTCP(ctx, r, u.Host)
	return u, addr, err
}
