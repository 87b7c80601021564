package etcdapi

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// clusterService is etcd's Cluster service. MemberList works; membership
// changes answer codes.Unimplemented until synod has them.
type clusterService struct {
	pb.UnsafeClusterServer // compile error if the service grows a method
	e                      *edge
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

// MemberAdd is not implemented yet.
func (c *clusterService) MemberAdd(context.Context, *pb.MemberAddRequest) (*pb.MemberAddResponse, error) {
	return nil, unimplemented("Cluster.MemberAdd")
}

// MemberRemove is not implemented yet.
func (c *clusterService) MemberRemove(context.Context, *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error) {
	return nil, unimplemented("Cluster.MemberRemove")
}

// MemberUpdate is not implemented yet.
func (c *clusterService) MemberUpdate(context.Context, *pb.MemberUpdateRequest) (*pb.MemberUpdateResponse, error) {
	return nil, unimplemented("Cluster.MemberUpdate")
}

// MemberPromote is not implemented yet.
func (c *clusterService) MemberPromote(context.Context, *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error) {
	return nil, unimplemented("Cluster.MemberPromote")
}
