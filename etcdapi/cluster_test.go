package etcdapi

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
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

func TestClusterMembershipChanges(t *testing.T) {
	ts := serve(t, newFakeMember(t, Limits{}), Options{})
	cli, ctx := ts.client(t), testCtx(t)
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
		m := newFakeMember(t, Limits{})
		m.changeErr = tc.err
		cli, ctx := serve(t, m, Options{}).client(t), testCtx(t)
		if _, err := cli.MemberPromote(ctx, 2); !errors.Is(err, tc.want) {
			t.Errorf("%v: got %v, want %v", tc.err, err, tc.want)
		}
		if _, err := cli.MemberRemove(ctx, 2); !errors.Is(err, tc.want) {
			t.Errorf("%v: remove got %v, want %v", tc.err, err, tc.want)
		}
	}
}
