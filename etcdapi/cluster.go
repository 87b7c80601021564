package etcdapi

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// clusterService is etcd's Cluster service over Backends.Cluster.
type clusterService struct {
	pb.UnsafeClusterServer // compile error if the service grows a method
	e                      *edge
}

// MemberList lists the cluster's members, after a read index when
// r.Linearizable. As in etcd, the header carries no revision.
func (c *clusterService) MemberList(ctx context.Context, r *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	members, err := c.e.b.Cluster.Members(ctx, r.GetLinearizable())
	if err != nil {
		return nil, toGRPCError(err)
	}
	// As etcd 3.7: once auth is on, only a known user may list (any
	// user: no permission is needed), checked after the read.
	if err := c.e.requireUser(ctx); err != nil {
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
	m, members, err := c.e.b.Cluster.AddMember(ctx, r.GetPeerURLs(), r.GetIsLearner())
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
	members, err := c.e.b.Cluster.RemoveMember(ctx, r.GetID())
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
	members, err := c.e.b.Cluster.UpdateMember(ctx, r.GetID(), r.GetPeerURLs())
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
	members, err := c.e.b.Cluster.PromoteMember(ctx, r.GetID())
	if err != nil {
		return nil, toGRPCError(err)
	}
	return &pb.MemberPromoteResponse{Header: c.e.fillIdentity(nil), Members: members}, nil
}
