package server

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/transport"
)

// joinTimeout bounds asking the existing members for the membership.
const joinTimeout = 30 * time.Second

// join sets up the identity of a member started with
// --initial-cluster-state existing and an empty data directory. Added
// members' IDs depend on the time they were added, so, as etcd does, it asks
// the members listed in --initial-cluster for the membership and finds
// itself by its peer URLs. raft then starts with no peers; the leader sends
// it the log (or a snapshot).
func (m *Member) join(initial []initialMember) error {
	var urls []string
	for _, im := range initial {
		if im.Name != m.cfg.Name {
			urls = append(urls, im.PeerURLs...)
		}
	}
	if len(urls) == 0 {
		return fmt.Errorf("%w: --initial-cluster-state existing needs the other members' peer URLs in --initial-cluster", ErrConfig)
	}
	ctx, cancel := context.WithTimeout(context.Background(), joinTimeout)
	defer cancel()
	raw, err := fetchMembers(ctx, urls, transport.DialTLS(m.tls.peerDialTLS()), grpc.WithContextDialer(transport.PeerDialer(m.cfg.Resolver)))
	if err != nil {
		return fmt.Errorf("server: cannot fetch cluster info from peer urls: %w", err)
	}
	var resp etcdserverpb.MemberListResponse
	if err := proto.Unmarshal(raw, &resp); err != nil {
		return fmt.Errorf("server: decode cluster info from peers: %w", err)
	}
	self := findByPeerURLs(resp.GetMembers(), m.cfg.InitialAdvertisePeerURLs)
	if self == nil {
		return fmt.Errorf("server: member %s (peer URLs %s) has not been added to cluster %x; add it first with "+
			"`etcdctl member add %s --peer-urls=%s`", m.cfg.Name, strings.Join(m.cfg.InitialAdvertisePeerURLs, ","),
			resp.GetHeader().GetClusterId(), m.cfg.Name, strings.Join(m.cfg.InitialAdvertisePeerURLs, ","))
	}
	if self.GetName() != "" && self.GetName() != m.cfg.Name {
		return fmt.Errorf("server: the member with peer URLs %v is named %q in the cluster, not %q",
			self.GetPeerURLs(), self.GetName(), m.cfg.Name)
	}
	m.id, m.clusterID = self.GetID(), resp.GetHeader().GetClusterId()
	m.joinPeers = resp.GetMembers()
	m.log.Info("joining an existing cluster", "member-id", fmt.Sprintf("%x", m.id),
		"cluster-id", fmt.Sprintf("%x", m.clusterID), "learner", self.GetIsLearner())
	return writeIdentity(m.db, identity{memberID: m.id, clusterID: m.clusterID})
}

// findByPeerURLs returns the member whose peer URLs are exactly urls (in any
// order), or nil.
func findByPeerURLs(ms []*etcdserverpb.Member, urls []string) *etcdserverpb.Member {
	want := slices.Sorted(slices.Values(urls))
	for _, mem := range ms {
		if slices.Equal(slices.Sorted(slices.Values(mem.GetPeerURLs())), want) {
			return mem
		}
	}
	return nil
}

// fetchMembers asks the peers for the membership until one answers or ctx
// ends (the peers may be starting too).
func fetchMembers(ctx context.Context, urls []string, opts ...grpc.DialOption) ([]byte, error) {
	for {
		raw, err := transport.FetchMembers(ctx, urls, opts...)
		if err == nil {
			return raw, nil
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(500 * time.Millisecond):
		}
	}
}
