package etcdapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/membership"
)

func TestMemberList(t *testing.T) {
	ts := serve(t, newFakeMember(t, Limits{}), Options{})
	cli, ctx := ts.client(t), testCtx(t)
	fill(t, cli, 2)
	lin, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ser, err := cli.MemberList(ctx, clientv3.WithSerializable())
	if err != nil {
		t.Fatal(err)
	}
	checkHeader(t, "member list", lin.Header, 0) // etcd sets no revision here
	want, _ := ts.m.Members(ctx, false)
	if len(lin.Members) != len(want) {
		t.Fatalf("members: %v", lin.Members)
	}
	for i := range want {
		if !proto.Equal(lin.Members[i], want[i]) || !proto.Equal(ser.Members[i], want[i]) {
			t.Errorf("member %d: got %v, want %v", i, lin.Members[i], want[i])
		}
	}
	ts.m.mu.Lock()
	calls := slices.Clone(ts.m.linearizable)
	ts.m.mu.Unlock()
	// The last call is the test's own.
	if !slices.Equal(calls[:2], []bool{true, false}) {
		t.Errorf("linearizable passed as %v, want [true false]", calls[:2])
	}
}

func TestClusterUnimplemented(t *testing.T) {
	ts := serve(t, newFakeMember(t, Limits{}), Options{})
	cli, ctx := ts.client(t), testCtx(t)
	c := pb.NewClusterClient(cli.ActiveConnection())
	checks := map[string]func() error{
		"MemberAdd":     func() error { _, err := c.MemberAdd(ctx, &pb.MemberAddRequest{}); return err },
		"MemberRemove":  func() error { _, err := c.MemberRemove(ctx, &pb.MemberRemoveRequest{}); return err },
		"MemberUpdate":  func() error { _, err := c.MemberUpdate(ctx, &pb.MemberUpdateRequest{}); return err },
		"MemberPromote": func() error { _, err := c.MemberPromote(ctx, &pb.MemberPromoteRequest{}); return err },
	}
	for name, call := range checks {
		err := call()
		want := "synod: Cluster." + name + " is not implemented yet"
		if status.Code(err) != codes.Unimplemented || status.Convert(err).Message() != want {
			t.Errorf("%s: got %v, want Unimplemented %q", name, err, want)
		}
	}
}

// memberChanger is a member that serves membership changes: it answers
// with fixed members, or with err.
type memberChanger struct {
	*fakeMember
	err error
}

var changedMembers = []*pb.Member{{ID: 1, Name: "a", PeerURLs: []string{"http://a:1"}}, {ID: 2, PeerURLs: []string{"http://b:1"}, IsLearner: true}}

func (m memberChanger) AddMember(_ context.Context, urls []string, learner bool) (*pb.Member, []*pb.Member, error) {
	return &pb.Member{ID: 2, PeerURLs: urls, IsLearner: learner}, changedMembers, m.err
}
func (m memberChanger) RemoveMember(context.Context, uint64) ([]*pb.Member, error) {
	return changedMembers, m.err
}
func (m memberChanger) UpdateMember(context.Context, uint64, []string) ([]*pb.Member, error) {
	return changedMembers, m.err
}
func (m memberChanger) PromoteMember(context.Context, uint64) ([]*pb.Member, error) {
	return changedMembers, m.err
}

func serveChanger(t *testing.T, m memberChanger) *clientv3.Client {
	t.Helper()
	gs := NewGRPCServer(m, Options{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{lis.Addr().String()}, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func TestClusterMembershipChanges(t *testing.T) {
	cli, ctx := serveChanger(t, memberChanger{fakeMember: newFakeMember(t, Limits{})}), testCtx(t)
	add, err := cli.MemberAddAsLearner(ctx, []string{"http://b:1"})
	if err != nil {
		t.Fatal(err)
	}
	checkHeader(t, "member add", add.Header, 0)
	if !add.Member.IsLearner || add.Member.ID != 2 || len(add.Members) != 2 {
		t.Fatalf("member add: %v", add)
	}
	rm, err := cli.MemberRemove(ctx, 3)
	if err != nil || len(rm.Members) != 2 {
		t.Fatalf("remove: %v, %v", rm, err)
	}
	checkHeader(t, "member remove", rm.Header, 0)
	up, err := cli.MemberUpdate(ctx, 1, []string{"http://c:1"})
	if err != nil || len(up.Members) != 2 {
		t.Fatalf("update: %v, %v", up, err)
	}
	pr, err := cli.MemberPromote(ctx, 2)
	if err != nil || len(pr.Members) != 2 {
		t.Fatalf("promote: %v, %v", pr, err)
	}
}

func TestClusterMembershipErrors(t *testing.T) {
	cases := []struct {
		err  error
		want error
	}{
		{membership.ErrIDNotFound, rpctypes.ErrMemberNotFound},
		{fmt.Errorf("deep: %w", membership.ErrLearnerNotReady), rpctypes.ErrMemberLearnerNotReady},
		{membership.ErrUnhealthy, rpctypes.ErrUnhealthy},
	}
	for _, tc := range cases {
		cli, ctx := serveChanger(t, memberChanger{fakeMember: newFakeMember(t, Limits{}), err: tc.err}), testCtx(t)
		if _, err := cli.MemberPromote(ctx, 2); !errors.Is(err, tc.want) {
			t.Errorf("%v: got %v, want %v", tc.err, err, tc.want)
		}
		if _, err := cli.MemberRemove(ctx, 2); !errors.Is(err, tc.want) {
			t.Errorf("%v: remove got %v, want %v", tc.err, err, tc.want)
		}
	}
}
