package etcdapi

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/alarm"
	"github.com/synod-db/synod/lease"
	"github.com/synod-db/synod/raftnode"
)

// maxKeepAlivesInFlight bounds the renewals one keep-alive stream has
// waiting on raft at once; the stream stops reading beyond it.
const maxKeepAlivesInFlight = 128

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

// LeaseKeepAlive answers every request with {Header, ID, TTL}: TTL is the
// granted TTL once the renewal is applied, 0 if the lease does not exist or
// has already expired on this member. Renewals run concurrently (at most
// maxKeepAlivesInFlight), so answers may come in a different order than the
// requests, which clientv3 matches by ID.
func (s *leaseService) LeaseKeepAlive(stream pb.Lease_LeaseKeepAliveServer) error {
	ctx, cancel := context.WithCancelCause(stream.Context())
	defer cancel(nil)
	if requireLeader(ctx) {
		// As etcd: a require-leader stream (clientv3's KeepAlive) is refused
		// without a leader and ended once the leader is gone for the grace
		// period, so the client moves to another member.
		if s.e.b.Leader.Leader() == 0 {
			return rpctypes.ErrGRPCNoLeader
		}
		go endWithoutLeader(ctx, s.e.b.Leader, s.grace, func() { cancel(raftnode.ErrNoLeader) })
	}
	who, err := s.e.who(ctx) // the token is verified once, when the stream opens
	if err != nil {
		return toGRPCError(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait() // runs before cancel: after io.EOF, answers in flight are still sent
	var sendMu sync.Mutex
	sem := make(chan struct{}, maxKeepAlivesInFlight)
	reqc, errc := s.receive(ctx, stream)
	for {
		select {
		case id := <-reqc:
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return streamErr(ctx)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				if err := s.keepAlive(ctx, stream, &sendMu, who.User, id); err != nil {
					cancel(err)
				}
			}()
		case err := <-errc:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case <-ctx.Done():
			return streamErr(ctx)
		}
	}
}

// receive reads the stream's requests on a goroutine of its own (a Recv
// blocks until the client sends or the stream ends) and hands over their IDs;
// the read error that ends it (io.EOF when the client closed its side) goes
// to the second channel.
func (s *leaseService) receive(ctx context.Context, stream pb.Lease_LeaseKeepAliveServer) (<-chan int64, <-chan error) {
	reqc, errc := make(chan int64), make(chan error, 1)
	go func() {
		for {
			req, err := stream.Recv()
			if err != nil {
				errc <- err
				return
			}
			select {
			case reqc <- req.GetID():
			case <-ctx.Done():
				return
			}
		}
	}()
	return reqc, errc
}

// keepAlive renews one lease and sends the answer.
func (s *leaseService) keepAlive(ctx context.Context, stream pb.Lease_LeaseKeepAliveServer, sendMu *sync.Mutex, user string, id int64) error {
	// The header is taken before the renewal (as etcd), so its revision is
	// never above one at which the lease was revoked.
	resp := &pb.LeaseKeepAliveResponse{ID: id, Header: s.e.fillHeader(nil)}
	if err := s.e.checkLeaseFor(user, id, true); err != nil {
		return toGRPCError(err)
	}
	ttl, err := s.renew(ctx, id)
	if err != nil {
		return err
	}
	resp.TTL = ttl
	sendMu.Lock()
	defer sendMu.Unlock()
	return stream.Send(resp)
}

// endWithoutLeader calls abort once the member has had no leader for grace,
// or returns when ctx ends.
func endWithoutLeader(ctx context.Context, lw Leader, grace time.Duration, abort func()) {
	for {
		changed := lw.LeaderChanged()
		if lw.Leader() == 0 {
			t := time.NewTimer(grace)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
				if lw.Leader() == 0 {
					abort()
					return
				}
				continue
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// streamErr is the error a keep-alive stream ends with once ctx is done: the
// renewal or send failure that cancelled it, mapped to a gRPC status.
func streamErr(ctx context.Context) error {
	return toGRPCError(context.Cause(ctx))
}

// renew renews lease id through raft (in an entry shared with the other
// renewals in flight on this member) and returns its granted TTL, or 0 if
// the lease does not exist or has expired on this member (its revocation is
// pending: etcd answers such a lease with TTL 0 too, once revoked).
func (s *leaseService) renew(ctx context.Context, id int64) (int64, error) {
	l := s.e.b.Leases
	st, ok := l.Lookup(id, false)
	if !ok {
		// Perhaps granted but not applied here yet.
		if err := s.e.b.Raft.ReadIndex(ctx); err != nil {
			return 0, err
		}
		if st, ok = l.Lookup(id, false); !ok {
			return 0, nil
		}
	}
	if st.Remaining <= 0 {
		return 0, nil
	}
	// Concurrent renewals of this member's clients share one raft entry.
	renewed, err := s.renewals.renew(ctx, s.e.b.Raft, id, st.TTL)
	if err != nil || !renewed {
		return 0, err
	}
	return st.TTL, nil
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
