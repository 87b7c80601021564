package etcdapi

import (
	"slices"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
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
