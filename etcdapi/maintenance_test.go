package etcdapi

import (
	"errors"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

func TestStatus(t *testing.T) {
	ts := serve(t, newFakeMember(t, Limits{}), Options{})
	cli, ctx := ts.client(t), testCtx(t)
	fill(t, cli, 3)
	got, err := cli.Status(ctx, ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	checkHeader(t, "status", got.Header, 4)
	want, _ := ts.m.Status(ctx)
	want.Header, want.DowngradeInfo = got.Header, &pb.DowngradeInfo{}
	if !proto.Equal((*pb.StatusResponse)(got), want) {
		t.Errorf("status:\n got %v\nwant %v", got, want)
	}
}

func TestHashKV(t *testing.T) {
	ts := serve(t, newFakeMember(t, Limits{}), Options{})
	cli, ctx := ts.client(t), testCtx(t)
	fill(t, cli, 5)
	if _, err := cli.Compact(ctx, 3); err != nil {
		t.Fatal(err)
	}
	got, err := cli.HashKV(ctx, ts.addr, 4)
	if err != nil {
		t.Fatal(err)
	}
	checkHeader(t, "hashkv", got.Header, 6)
	hash, hashRev, compactRev, _ := ts.m.store.HashKV(4)
	if got.Hash != hash || got.HashRevision != hashRev || got.CompactRevision != compactRev || hashRev != 4 || compactRev != 3 {
		t.Errorf("hashkv: got %v, want hash %d rev %d compact %d", got, hash, hashRev, compactRev)
	}
	if _, err := cli.HashKV(ctx, ts.addr, 2); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Errorf("hashkv below compaction: %v", err)
	}
	if _, err := cli.HashKV(ctx, ts.addr, 99); !errors.Is(err, rpctypes.ErrFutureRev) {
		t.Errorf("hashkv of the future: %v", err)
	}
}

func TestAlarm(t *testing.T) {
	ts := serve(t, newFakeMember(t, Limits{}), Options{})
	cli, ctx := ts.client(t), testCtx(t)
	list, err := cli.AlarmList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkHeader(t, "alarm list", list.Header, 1)
	if len(list.Alarms) != 0 {
		t.Errorf("alarms: %v", list.Alarms)
	}
	if _, err := cli.AlarmDisarm(ctx, &clientv3.AlarmMember{MemberID: testMemberID, Alarm: pb.AlarmType_NOSPACE}); err != nil {
		t.Errorf("disarm: %v", err)
	}
	m := pb.NewMaintenanceClient(cli.ActiveConnection())
	_, err = m.Alarm(ctx, &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, Alarm: pb.AlarmType_NOSPACE})
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("activate: %v", err)
	}
}

func TestMaintenanceUnimplemented(t *testing.T) {
	ts := serve(t, newFakeMember(t, Limits{}), Options{})
	cli, ctx := ts.client(t), testCtx(t)
	m := pb.NewMaintenanceClient(cli.ActiveConnection())
	checks := map[string]func() error{
		"Defragment": func() error { _, err := m.Defragment(ctx, &pb.DefragmentRequest{}); return err },
		"Hash":       func() error { _, err := m.Hash(ctx, &pb.HashRequest{}); return err },
		"MoveLeader": func() error { _, err := m.MoveLeader(ctx, &pb.MoveLeaderRequest{}); return err },
		"Downgrade":  func() error { _, err := m.Downgrade(ctx, &pb.DowngradeRequest{}); return err },
		"Snapshot": func() error {
			s, err := m.Snapshot(ctx, &pb.SnapshotRequest{})
			if err == nil {
				_, err = s.Recv()
			}
			return err
		},
	}
	for name, call := range checks {
		err := call()
		want := "synod: Maintenance." + name + " is not implemented yet"
		if status.Code(err) != codes.Unimplemented || status.Convert(err).Message() != want {
			t.Errorf("%s: got %v, want Unimplemented %q", name, err, want)
		}
	}
}
