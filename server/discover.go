package server

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/synod-db/synod/discovery"
)

// Bootstrap is the part of Config that finds a new cluster's founding
// members some other way than --initial-cluster (etcd's --discovery-srv
// and v3 discovery), and resolves peer host names.
type Bootstrap struct {
	// Discovery, when set, is asked for the founding members (an
	// --initial-cluster value) and the cluster token the first time a data
	// directory starts; they replace InitialCluster and
	// InitialClusterToken. A data directory with a member in it ignores
	// it, as etcd ignores its discovery flags once initialized.
	Discovery Discoverer
	// Resolver resolves peer host names at every dial of a peer (and may
	// be the one Discovery uses); nil means net.DefaultResolver. Tests set
	// it to ask a DNS server of their own (discovery.UseDNSServer).
	Resolver *net.Resolver
}

// Discoverer finds the founding members of a new cluster:
// discovery.SRV and discovery.V3.
type Discoverer interface {
	Discover(ctx context.Context, self discovery.Self) (initialCluster, token string, err error)
}

// discover replaces the --initial-cluster flags with what Discovery finds
// (it is called only for a data directory with no member in it).
func (m *Member) discover() error {
	if m.cfg.Discovery == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), joinTimeout)
	defer cancel()
	self := discovery.Self{Name: m.cfg.Name, PeerURLs: m.cfg.InitialAdvertisePeerURLs,
		Token: m.cfg.InitialClusterToken, Existing: m.cfg.InitialClusterState == "existing",
		MemberID: func(urls []string, token string) uint64 { return MemberID(urls, token, nil) }}
	cluster, token, err := m.cfg.Discovery.Discover(ctx, self)
	if err != nil {
		return err
	}
	m.log.Info("found the initial cluster by discovery", "initial-cluster", cluster, "initial-cluster-token", token)
	m.cfg.InitialCluster, m.cfg.InitialClusterToken = cluster, token
	// As etcd: the cluster may list this member by a name where it
	// advertises an address; the same addresses are the same member, known
	// to the others by the cluster's URLs.
	if mine := membersURLs(cluster, m.cfg.Name); !sameURLs(mine, m.cfg.InitialAdvertisePeerURLs) &&
		discovery.SameAddresses(ctx, resolverOrDefault(m.cfg.Resolver), mine, m.cfg.InitialAdvertisePeerURLs) {
		m.cfg.InitialAdvertisePeerURLs = mine
	}
	// As etcd: https peers found by name, with no CA file of their own, are
	// verified against the discovery's domain.
	if d, ok := m.cfg.Discovery.(interface{ PeerServerName() string }); ok &&
		strings.Contains(cluster, "https://") && m.cfg.PeerTLS.TrustedCAFile == "" {
		m.tls.peerServerName = d.PeerServerName()
	}
	if _, err := m.cfg.initialMembers(); err != nil {
		return fmt.Errorf("discovered cluster %s: %w", cluster, err)
	}
	return nil
}

// membersURLs is name's peer URLs in an --initial-cluster value.
func membersURLs(cluster, name string) []string {
	var urls []string
	for _, part := range strings.Split(cluster, ",") {
		if n, u, ok := strings.Cut(part, "="); ok && n == name {
			urls = append(urls, u)
		}
	}
	return urls
}

// sameURLs reports whether a and b hold the same URLs in any order.
func sameURLs(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}

// resolverOrDefault is r, or net.DefaultResolver when r is nil.
func resolverOrDefault(r *net.Resolver) discovery.Resolver {
	if r == nil {
		return net.DefaultResolver
	}
	return r
}
