package etcdapi

import (
	"context"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errGRPCMissingLeader is etcd's answer to a Proclaim or Resign without a
// leader key (v3election.ErrMissingLeaderKey, which gRPC sends as Unknown).
var errGRPCMissingLeader = status.Error(codes.Unknown, `"leader" field must be provided`)

// noLease names no lease in a recipe session: the read-only election calls
// (Leader, Observe) own nothing, as in etcd.
const noLease = -1

// electionService is etcd's v3electionpb.Election service, built like
// lockService on the clientv3/concurrency recipe through a client of this
// member, so server-side and client-side elections interoperate.
type electionService struct {
	v3electionpb.UnsafeElectionServer
	c *clientv3.Client
	e *edge // forwards the caller's identity to c (nil: none)
}

// Campaign waits until the caller leads election r.Name with value r.Value.
// The leader key's revision (LeaderKey.Rev) is its fencing token.
func (e *electionService) Campaign(ctx context.Context, r *v3electionpb.CampaignRequest) (*v3electionpb.CampaignResponse, error) {
	ctx, err := e.e.forward(ctx)
	if err != nil {
		return nil, toGRPCError(err)
	}
	s, err := recipeSession(ctx, e.c, r.GetLease())
	if err != nil {
		return nil, toGRPCError(err)
	}
	el := concurrency.NewElection(s, string(r.GetName()))
	if err := el.Campaign(ctx, string(r.GetValue())); err != nil {
		return nil, toGRPCError(err)
	}
	if err := leaseAlive(ctx, e.c, int64(s.Lease())); err != nil {
		_ = el.Resign(context.WithoutCancel(ctx))
		return nil, toGRPCError(err)
	}
	return &v3electionpb.CampaignResponse{
		Header: el.Header(),
		Leader: &v3electionpb.LeaderKey{Name: r.GetName(), Key: []byte(el.Key()), Rev: el.Rev(), Lease: int64(s.Lease())},
	}, nil
}

// Proclaim sets a new value for the leadership the caller holds.
func (e *electionService) Proclaim(ctx context.Context, r *v3electionpb.ProclaimRequest) (*v3electionpb.ProclaimResponse, error) {
	ctx, err := e.e.forward(ctx)
	if err != nil {
		return nil, toGRPCError(err)
	}
	el, err := e.resume(ctx, r.GetLeader())
	if err != nil {
		return nil, err
	}
	if err := el.Proclaim(ctx, string(r.GetValue())); err != nil {
		return nil, toGRPCError(err)
	}
	return &v3electionpb.ProclaimResponse{Header: el.Header()}, nil
}

// Resign gives up the leadership the caller holds.
func (e *electionService) Resign(ctx context.Context, r *v3electionpb.ResignRequest) (*v3electionpb.ResignResponse, error) {
	ctx, err := e.e.forward(ctx)
	if err != nil {
		return nil, toGRPCError(err)
	}
	el, err := e.resume(ctx, r.GetLeader())
	if err != nil {
		return nil, err
	}
	if err := el.Resign(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	return &v3electionpb.ResignResponse{Header: el.Header()}, nil
}

// Leader returns the current leader's key-value of election r.Name, or
// etcd's "election: no leader".
func (e *electionService) Leader(ctx context.Context, r *v3electionpb.LeaderRequest) (*v3electionpb.LeaderResponse, error) {
	ctx, err := e.e.forward(ctx)
	if err != nil {
		return nil, toGRPCError(err)
	}
	s, err := recipeSession(ctx, e.c, noLease)
	if err != nil {
		return nil, toGRPCError(err)
	}
	l, err := concurrency.NewElection(s, string(r.GetName())).Leader(ctx)
	if err != nil {
		return nil, toGRPCError(err)
	}
	return &v3electionpb.LeaderResponse{Header: l.Header, Kv: l.Kvs[0]}, nil
}

// Observe streams the leader's key-value each time leadership or the
// proclaimed value changes, until the client goes away.
func (e *electionService) Observe(r *v3electionpb.LeaderRequest, stream grpc.ServerStreamingServer[v3electionpb.LeaderResponse]) error {
	ctx, err := e.e.forward(stream.Context())
	if err != nil {
		return toGRPCError(err)
	}
	s, err := recipeSession(ctx, e.c, noLease)
	if err != nil {
		return toGRPCError(err)
	}
	ch := concurrency.NewElection(s, string(r.GetName())).Observe(ctx)
	for {
		select {
		case <-ctx.Done():
			return toGRPCError(ctx.Err())
		case resp, ok := <-ch:
			if !ok {
				return toGRPCError(ctx.Err())
			}
			if err := stream.Send(&v3electionpb.LeaderResponse{Header: resp.Header, Kv: resp.Kvs[0]}); err != nil {
				return err
			}
		}
	}
}

// resume rebuilds the caller's election from its leader key.
func (e *electionService) resume(ctx context.Context, lk *v3electionpb.LeaderKey) (*concurrency.Election, error) {
	if lk == nil {
		return nil, errGRPCMissingLeader
	}
	s, err := recipeSession(ctx, e.c, lk.GetLease())
	if err != nil {
		return nil, toGRPCError(err)
	}
	return concurrency.ResumeElection(s, string(lk.GetName()), string(lk.GetKey()), lk.GetRev()), nil
}
