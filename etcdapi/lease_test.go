package etcdapi

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/lease"
	"github.com/synod-db/synod/raftnode"
)

// leaseMember is a fakeMember with a lessor on a manual clock: Propose
// applies lease requests to the lessor at once (as the member's applier
// would) and records every renewal it is asked to propose.
type leaseMember struct {
	*fakeMember
	lessor *lease.Lessor

	mu       sync.Mutex
	now      time.Time
	index    uint64
	renewals []*pb.LeaseCheckpoint
	failWith error         // if set, renewal entries fail with it (not applied)
	hold     chan struct{} // if set, renewal entries wait for it to close
}

var _ LeaseGrants = (*leaseMember)(nil)

func newLeaseMember(t *testing.T) *leaseMember {
	m := &leaseMember{fakeMember: newFakeMember(t, Limits{}), now: time.Unix(5000, 0)}
	m.nextLeaseID = 0x100 // generated IDs from 0x101
	m.lessor = lease.New(lease.Config{Clock: m.clock})
	return m
}

func (m *leaseMember) clock() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.now
}

func (m *leaseMember) advance(d time.Duration) {
	m.mu.Lock()
	m.now = m.now.Add(d)
	m.mu.Unlock()
}

// backends are the fakeMember's, with m's lessor, grants and proposals.
func (m *leaseMember) backends() Backends {
	b := m.fakeMember.backends()
	b.Raft, b.Leases, b.LeaseGrants = m, m.lessor, m
	return b
}

func (m *leaseMember) MinLeaseTTL() int64 { return 2 }

func (m *leaseMember) Propose(ctx context.Context, req *pb.InternalRaftRequest) (proto.Message, error) {
	m.mu.Lock()
	m.index++
	index := m.index
	m.mu.Unlock()
	hdr := &pb.ResponseHeader{Revision: m.store.Rev()}
	if req.LeaseGrant != nil || req.LeaseCheckpoint != nil {
		m.proposals.Add(1)
	}
	switch {
	case req.LeaseGrant != nil:
		c, err := m.lessor.PlanGrant(req.LeaseGrant.ID, req.LeaseGrant.TTL, index)
		if err != nil {
			return nil, err
		}
		m.lessor.Commit(c)
		return &pb.LeaseGrantResponse{Header: hdr, ID: c.Put[0].ID, TTL: c.Put[0].TTL}, nil
	case req.LeaseCheckpoint != nil:
		m.mu.Lock()
		m.renewals = append(m.renewals, req.LeaseCheckpoint.Checkpoints...)
		failWith, hold := m.failWith, m.hold
		m.mu.Unlock()
		if hold != nil {
			<-hold
		}
		if failWith != nil {
			return nil, failWith
		}
		c, err := m.lessor.PlanCheckpoints(req.LeaseCheckpoint.Checkpoints, index)
		m.lessor.Commit(c)
		if err != nil {
			return nil, err
		}
		return &pb.LeaseCheckpointResponse{Header: hdr}, nil
	}
	return m.fakeMember.Propose(ctx, req)
}

func (m *leaseMember) proposedRenewals() []*pb.LeaseCheckpoint {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*pb.LeaseCheckpoint(nil), m.renewals...)
}

// serveLease serves m on loopback and returns a clientv3 client of it.
func serveLease(t *testing.T, m *leaseMember) *clientv3.Client {
	t.Helper()
	gs := NewGRPCServer(m.backends(), Options{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{lis.Addr().String()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func TestLeaseGrantAtTheEdge(t *testing.T) {
	m := newLeaseMember(t)
	cli := serveLease(t, m)
	for _, tc := range []struct {
		name    string
		req     *pb.LeaseGrantRequest
		wantID  int64
		wantTTL int64
		err     error
	}{
		{"generated ID", &pb.LeaseGrantRequest{TTL: 30}, 0x101, 30, nil},
		{"chosen ID", &pb.LeaseGrantRequest{ID: 7, TTL: 30}, 7, 30, nil},
		{"below the minimum TTL", &pb.LeaseGrantRequest{TTL: 1}, 0x102, 2, nil},
		{"negative TTL", &pb.LeaseGrantRequest{TTL: -9}, 0x103, 2, nil},
		{"too large, refused before proposing", &pb.LeaseGrantRequest{TTL: lease.MaxTTL + 1}, 0, 0, rpctypes.ErrGRPCLeaseTTLTooLarge},
		{"duplicate", &pb.LeaseGrantRequest{ID: 7, TTL: 30}, 0, 0, rpctypes.ErrGRPCLeaseExist},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := m.proposals.Load()
			resp, err := pb.NewLeaseClient(cli.ActiveConnection()).LeaseGrant(testCtx(t), tc.req)
			if rpctypes.ErrorDesc(err) != rpctypes.ErrorDesc(tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if errors.Is(tc.err, rpctypes.ErrGRPCLeaseTTLTooLarge) && m.proposals.Load() != before {
				t.Fatal("a too large TTL was proposed")
			}
			if tc.err != nil {
				return
			}
			if resp.ID != tc.wantID || resp.TTL != tc.wantTTL || resp.Header.MemberId != testMemberID {
				t.Fatalf("resp %v", resp)
			}
		})
	}
}

// The keep-alive/expiry race, at the edge: a lease this member has seen
// expire is answered TTL 0 without proposing a renewal; a live one is
// renewed through a proposal carrying its granted TTL.
func TestLeaseKeepAliveAtTheEdge(t *testing.T) {
	m := newLeaseMember(t)
	cli := serveLease(t, m)
	g, err := cli.Grant(testCtx(t), 10)
	if err != nil {
		t.Fatal(err)
	}
	m.advance(9 * time.Second)
	ka, err := cli.KeepAliveOnce(testCtx(t), g.ID)
	if err != nil || ka.TTL != 10 {
		t.Fatalf("keep-alive of a live lease: %v %v", ka, err)
	}
	if r := m.proposedRenewals(); len(r) != 1 || r[0].ID != int64(g.ID) || r[0].Remaining_TTL != 10 {
		t.Fatalf("renewals proposed: %v", r)
	}
	m.advance(3500 * time.Millisecond) // 3.5 s after the renewal
	ttl, err := cli.TimeToLive(testCtx(t), g.ID)
	if err != nil || ttl.TTL != 6 || ttl.GrantedTTL != 10 {
		t.Fatalf("TimeToLive: %+v %v", ttl, err)
	}
	m.advance(7 * time.Second) // expired here; its revocation is pending
	if _, err := cli.KeepAliveOnce(testCtx(t), g.ID); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Fatalf("keep-alive of a locally expired lease: %v", err)
	}
	if ttl, err := cli.TimeToLive(testCtx(t), g.ID); err != nil || ttl.TTL != 0 || ttl.GrantedTTL != 10 {
		t.Fatalf("TimeToLive of a locally expired lease: %+v %v", ttl, err)
	}
	reads := m.readIndexes.Load()
	if _, err := cli.KeepAliveOnce(testCtx(t), 0x999); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Fatalf("keep-alive of an unknown lease: %v", err)
	}
	if m.readIndexes.Load() == reads {
		t.Fatal("an unknown lease was declared unknown without a ReadIndex")
	}
	if r := m.proposedRenewals(); len(r) != 1 {
		t.Fatalf("renewals proposed for expired or unknown leases: %v", r)
	}
}

// A renewal whose entry fails ends the keep-alive stream with that error
// (mapped to etcd's status), never with an answer: on a KeepAliveOnce, and
// on a raw stream whose client closed its side while the renewal was in
// flight (which must not end cleanly, as if every request were answered).
func TestLeaseKeepAliveFailedRenewalEndsStream(t *testing.T) {
	m := newLeaseMember(t)
	cli := serveLease(t, m)
	g, err := cli.Grant(testCtx(t), 10)
	if err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	m.failWith = raftnode.ErrNoLeader
	m.mu.Unlock()
	if _, err := cli.KeepAliveOnce(testCtx(t), g.ID); rpctypes.Error(err) != rpctypes.ErrNoLeader {
		t.Fatalf("KeepAliveOnce with a failing entry: %v, want %v", err, rpctypes.ErrNoLeader)
	}
	// The entry is held until the client has closed its side, so the
	// member learns of the close while the renewal is still in flight.
	hold := make(chan struct{})
	m.mu.Lock()
	m.hold, m.renewals = hold, nil
	m.mu.Unlock()
	stream, err := pb.NewLeaseClient(cli.ActiveConnection()).LeaseKeepAlive(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&pb.LeaseKeepAliveRequest{ID: int64(g.ID)}); err != nil {
		t.Fatal(err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the renewal proposed", func() bool { return len(m.proposedRenewals()) == 1 })
	close(hold)
	if r, err := stream.Recv(); rpctypes.Error(err) != rpctypes.ErrNoLeader {
		t.Fatalf("half-closed stream with a failing entry: %v %v, want %v", r, err, rpctypes.ErrNoLeader)
	}
}
