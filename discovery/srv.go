package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Self is the member asking discovery for its cluster.
type Self struct {
	Name     string   // --name
	PeerURLs []string // --initial-advertise-peer-urls
	Token    string   // --initial-cluster-token
	// Existing is --initial-cluster-state=existing: the member joins a
	// running cluster rather than founding one.
	Existing bool
	// MemberID derives a member's ID from its peer URLs and a cluster
	// token, as etcd does (v3 discovery registers under it).
	MemberID func(peerURLs []string, token string) uint64
}

// SRV finds the founding members in DNS SRV records, as etcd's
// --discovery-srv: every target of _etcd-server-ssl._tcp.<Domain> (https
// peers) and _etcd-server._tcp.<Domain> (http peers), each with the suffix
// -<ServiceName> when ServiceName is set. The target whose address is one of
// this member's advertised peer URLs' is this member; the others are named
// by their position. etcd's client/pkg/srv.GetCluster does the same with
// package variables bound to net.LookupSRV, which no test can point at
// another DNS server, so the algorithm is repeated here over a Resolver.
type SRV struct {
	Domain      string   // --discovery-srv
	ServiceName string   // --discovery-srv-name
	Resolver    Resolver // nil: net.DefaultResolver
}

// SetupError is a failed SRV discovery, in etcd's words ("error setting
// up initial cluster: ...").
type SetupError struct{ Err error }

// Error returns etcd's text.
func (e *SetupError) Error() string { return "error setting up initial cluster: " + e.Err.Error() }

// Unwrap returns the lookup's error.
func (e *SetupError) Unwrap() error { return e.Err }

// Discover returns the cluster the SRV records describe, and self's token.
// It fails, with etcd's errors (a *SetupError), when neither service has a
// usable record or when no record is this member.
func (s SRV) Discover(ctx context.Context, self Self) (cluster, token string, err error) {
	cluster, err = s.discover(ctx, self)
	var notListed *notInClusterError
	if errors.As(err, &notListed) {
		return "", "", err // as etcd: found later, by its bootstrap check
	}
	if err != nil {
		return "", "", &SetupError{Err: err}
	}
	return cluster, self.Token, nil
}

// PeerServerName is the name etcd verifies https peers' certificates
// against when they were found in SRV records and no peer CA file is
// given: the SRV domain.
func (s SRV) PeerServerName() string { return s.Domain }

// notInClusterError is an empty cluster: no record and no lookup error.
type notInClusterError struct{ name string }

// Error returns etcd's text.
func (e *notInClusterError) Error() string {
	return fmt.Sprintf("couldn't find local name %q in the initial cluster configuration", e.name)
}

func (s SRV) discover(ctx context.Context, self Self) (string, error) {
	r := s.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	suffix := ""
	if s.ServiceName != "" {
		suffix = "-" + s.ServiceName
	}
	parts, errHTTPS := s.cluster(ctx, r, "https", "etcd-server-ssl"+suffix, self)
	if errHTTPS != nil {
		parts = nil
	}
	plain, errHTTP := s.cluster(ctx, r, "http", "etcd-server"+suffix, self)
	if errHTTP == nil {
		parts = append(parts, plain...)
	}
	if len(parts) == 0 {
		if err := errors.Join(errHTTPS, errHTTP); err != nil {
			return "", err
		}
		// etcd goes on with an empty cluster, which its bootstrap check refuses.
		return "", &notInClusterError{name: self.Name}
	}
	if !hasMember(parts, self.Name) {
		return "", fmt.Errorf("cannot find local etcd member %q in SRV records", self.Name)
	}
	return strings.Join(parts, ","), nil
}

// cluster lists name=scheme://target:port for service's records. A target
// that does not resolve (or is this member under the other scheme) is
// skipped; its error is returned only when no target is left.
func (s SRV) cluster(ctx context.Context, r Resolver, scheme, service string, self Self) ([]string, error) {
	own, err := resolvedPeerURLs(ctx, r, self.PeerURLs)
	if err != nil {
		return nil, err // as etcd: unwrapped
	}
	_, records, err := r.LookupSRV(ctx, service, "tcp", s.Domain)
	if err != nil {
		return nil, fmt.Errorf("error querying DNS SRV records for _%s %w", service, err)
	}
	var parts []string
	next := 0
	for _, rec := range records {
		port := strconv.Itoa(int(rec.Port))
		addr, rerr := resolveTCP(ctx, r, net.JoinHostPort(rec.Target, port))
		if rerr != nil {
			err = rerr
			continue
		}
		hostport := net.JoinHostPort(strings.TrimSuffix(rec.Target, "."), port)
		mine, isSelf := own[addr]
		name := self.Name
		if !isSelf {
			name = strconv.Itoa(next)
			next++
		}
		if isSelf && mine.Scheme != scheme {
			err = fmt.Errorf("bootstrap at %s from DNS for %s has scheme mismatch with expected peer %s", scheme+"://"+hostport, service, mine.String())
			continue
		}
		parts = append(parts, name+"="+scheme+"://"+hostport)
	}
	if len(parts) == 0 && err != nil {
		return nil, fmt.Errorf("error querying DNS SRV records for _%s %w", service, err)
	}
	return parts, nil
}

// resolvedPeerURLs maps each advertised peer URL's resolved address to it.
func resolvedPeerURLs(ctx context.Context, r Resolver, urls []string) (map[string]*url.URL, error) {
	out := make(map[string]*url.URL, len(urls))
	for _, raw := range urls {
		u, addr, err := resolveURL(ctx, r, raw)
		if err != nil {
			return nil, err
		}
		out[addr] = u
	}
	return out, nil
}

// hasMember reports whether one of the name=URL parts is name's.
func hasMember(parts []string, name string) bool {
	for _, p := range parts {
		if n, _, _ := strings.Cut(p, "="); n == name {
			return true
		}
	}
	return false
}
