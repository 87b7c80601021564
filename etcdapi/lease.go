package etcdapi

import (
	"context"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/alarm"
	"github.com/synod-db/synod/lease"
)

// leaseService is etcd's Lease service. Grants, revocations and renewals go
// through raft; TimeToLive and Leases read this member's view after a
// ReadIndex.
type leaseService struct {
	pb.UnimplementedLeaseServer
	e     *edge
	grace time.Duration // how long a require-leader keep-alive stream survives without a leader

	renewals renewer // coalesces keep-alives into shared raft entries
}

func (s *leaseService) LeaseGrant(ctx context.Context, req *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	// As etcd's quotaLeaseServer: a grant that would take the database over
	// its quota raises NOSPACE and fails before it is proposed.
	if err := s.e.b.Quota.CheckQuota(ctx, alarm.LeaseOverhead); err != nil {
		return nil, toGRPCError(err)
	}
	if err := s.e.requireUser(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	r := proto.Clone(req).(*pb.LeaseGrantRequest)
	// The ID is chosen here, before proposing, so that applying is
	// deterministic; the minimum TTL too, so that every member grants the
	// same TTL whatever its own election timeout.
	if r.ID == 0 {
		r.ID = s.e.b.LeaseGrants.NewLeaseID()
	}
	if r.TTL > lease.MaxTTL {
		return nil, toGRPCError(lease.ErrTTLTooLarge)
	}
	r.TTL = max(r.TTL, s.e.b.LeaseGrants.MinLeaseTTL())
	resp, err := proposeAs[*pb.LeaseGrantResponse](ctx, s.e, &pb.InternalRaftRequest{LeaseGrant: r})
	if err != nil {
		return nil, err
	}
	s.e.fillHeader(resp.Header)
	return resp, nil
}

func (s *leaseService) LeaseRevoke(ctx context.Context, req *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	if err := s.e.requireUser(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	ireq := &pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: req.GetID()}}
	if err := s.e.authorize(ctx, ireq); err != nil {
		return nil, toGRPCError(err)
	}
	resp, err := proposeAs[*pb.LeaseRevokeResponse](ctx, s.e, ireq)
	if err != nil {
		return nil, err
	}
	s.e.fillHeader(resp.Header)
	return resp, nil
}

// LeaseTimeToLive answers from this member's view after a ReadIndex: the
// remaining TTL is this member's own expiry (its apply time of the last
// renewal plus the TTL). An unknown lease is TTL -1, as etcd answers.
func (s *leaseService) LeaseTimeToLive(ctx context.Context, req *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	if err := s.e.requireUser(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	if err := s.e.b.Raft.ReadIndex(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	if req.GetKeys() {
		if err := s.e.checkLease(ctx, req.GetID(), false); err != nil {
			return nil, toGRPCError(err)
		}
	}
	resp := &pb.LeaseTimeToLiveResponse{Header: s.e.fillHeader(nil), ID: req.GetID(), TTL: -1}
	st, ok := s.e.b.Leases.Lookup(req.GetID(), req.GetKeys())
	if ok {
		resp.TTL, resp.GrantedTTL = st.RemainingSeconds(), st.TTL
		if req.GetKeys() {
			resp.Keys = st.Keys
		}
	}
	return resp, nil
}

// LeaseLeases lists every lease after a ReadIndex (etcd lists its local
// view without one).
func (s *leaseService) LeaseLeases(ctx context.Context, _ *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error) {
	if err := s.e.b.Raft.ReadIndex(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	if err := s.e.requireUser(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	ids := s.e.b.Leases.IDs()
	for _, id := range ids {
		if err := s.e.checkLease(ctx, id, false); err != nil {
			return nil, toGRPCError(err)
		}
	}
	resp := &pb.LeaseLeasesResponse{Header: s.e.fillHeader(nil), Leases: make([]*pb.LeaseStatus, len(ids))}
	for i, id := range ids {
		resp.Leases[i] = &pb.LeaseStatus{ID: id}
	}
	return resp, nil
}

// proposeAs proposes req and returns the response as T, with errors mapped.
func proposeAs[T proto.Message](ctx context.Context, e *edge, req *pb.InternalRaftRequest) (T, error) {
	var zero T
	resp, err := e.b.Raft.Propose(ctx, req)
	if err != nil {
		return zero, toGRPCError(err)
	}
	t, ok := resp.(T)
	if !ok {
		return zero, toGRPCError(errUnexpectedResponse)
	}
	return t, nil
}
