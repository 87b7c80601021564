package etcdapi

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// MembershipServer is what a member implements to serve membership changes
// (etcd's Cluster service beyond MemberList). Methods are safe for
// concurrent use. Errors: the membership package's sentinels, the raftnode
// errors of Server.Propose, ctx errors.
type MembershipServer interface {
	// AddMember adds a member with peerURLs, as a learner if learner is
	// set, and returns it (ID, PeerURLs, IsLearner) and every member after
	// the change.
	AddMember(ctx context.Context, peerURLs []string, learner bool) (*pb.Member, []*pb.Member, error)
	// RemoveMember removes member id and returns the members after it.
	RemoveMember(ctx context.Context, id uint64) ([]*pb.Member, error)
	// UpdateMember replaces member id's peer URLs and returns the members.
	UpdateMember(ctx context.Context, id uint64, peerURLs []string) ([]*pb.Member, error)
	// PromoteMember makes learner id a voter and returns the members.
	PromoteMember(ctx context.Context, id uint64) ([]*pb.Member, error)
}

// clusterService is etcd's Cluster service. Membership changes need the
// member to implement MembershipServer; otherwise they answer
// codes.Unimplemented.
type clusterService struct {
	pb.UnsafeClusterServer // compile error if the service grows a method
	e                      *edge
	ms                     MembershipServer // nil if the member does not serve changes
}

// MemberList lists the cluster's members, after a read index when
// r.Linearizable. As in etcd, the header carries no revision.
func (c *clusterService) MemberList(ctx context.Context, r *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	members, err := c.e.srv.Members(ctx, r.GetLinearizable())
	if err != nil {
		return nil, toGRPCError(err)
	}
	return &pb.MemberListResponse{Header: c.e.fillIdentity(nil), Members: members}, nil
}

// MemberAdd adds a member (a learner if r.IsLearner). As in etcd the
// response carries the new member (ID, PeerURLs, IsLearner) and the whole
// membership after the change.
func (c *clusterService) MemberAdd(ctx context.Context, r *pb.MemberAddRequest) (*pb.MemberAddResponse, error) {
	if err := c.e.requireAdmin(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	if c.ms == nil {
		return nil, unimplemented("Cluster.MemberAdd")
	}
	m, members, err := c.ms.AddMember(ctx, r.GetPeerURLs(), r.GetIsLearner())
	if err != nil {
		return nil, toGRPCError(err)
	}
	return &pb.MemberAddResponse{Header: c.e.fillIdentity(nil), Member: m, Members: members}, nil
}

// MemberRemove removes a member.
func (c *clusterService) MemberRemove(ctx context.Context, r *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error) {
	if err := c.e.requireAdmin(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	if c.ms == nil {
		return nil, unimplemented("Cluster.MemberRemove")
	}
	members, err := c.ms.RemoveMember(ctx, r.GetID())
	if err != nil {
		return nil, toGRPCError(err)
	}
	return &pb.MemberRemoveResponse{Header: c.e.fillIdentity(nil), Members: members}, nil
}

// MemberUpdate replaces a member's peer URLs.
func (c *clusterService) MemberUpdate(ctx context.Context, r *pb.MemberUpdateRequest) (*pb.MemberUpdateResponse, error) {
	if err := c.e.requireAdmin(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	if c.ms == nil {
		return nil, unimplemented("Cluster.MemberUpdate")
	}
	members, err := c.ms.UpdateMember(ctx, r.GetID(), r.GetPeerURLs())
	if err != nil {
		return nil, toGRPCError(err)
	}
	return &pb.MemberUpdateResponse{Header: c.e.fillIdentity(nil), Members: members}, nil
}

// MemberPromote promotes a learner that is in sync with the leader.
func (c *clusterService) MemberPromote(ctx context.Context, r *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error) {
	if err := c.e.requireAdmin(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	if c.ms == nil {
		return nil, unimplemented("Cluster.MemberPromote")
	}
	members, err := c.ms.PromoteMember(ctx, r.GetID())
	if err != nil {
		return nil, toGRPCError(err)
	}
	return &pb.MemberPromoteResponse{Header: c.e.fillIdentity(nil), Members: members}, nil
}
