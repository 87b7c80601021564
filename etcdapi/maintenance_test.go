package etcdapi

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/mvcc"
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
	nospace := &pb.AlarmMember{MemberID: testMemberID, Alarm: pb.AlarmType_NOSPACE}
	if resp, err := cli.AlarmDisarm(ctx, (*clientv3.AlarmMember)(nospace)); err != nil || len(resp.Alarms) != 0 {
		t.Errorf("disarm of nothing: %v %v", resp, err)
	}
	m := pb.NewMaintenanceClient(cli.ActiveConnection())
	got, err := m.Alarm(ctx, &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: testMemberID, Alarm: pb.AlarmType_NOSPACE})
	if err != nil || len(got.Alarms) != 1 || !proto.Equal(got.Alarms[0], nospace) {
		t.Fatalf("activate: %v %v", got, err)
	}
	if list, err = cli.AlarmList(ctx); err != nil || len(list.Alarms) != 1 || !proto.Equal(list.Alarms[0], nospace) {
		t.Errorf("list after activate: %v %v", list, err)
	}
	if resp, err := cli.AlarmDisarm(ctx, (*clientv3.AlarmMember)(nospace)); err != nil || len(resp.Alarms) != 1 {
		t.Errorf("disarm: %v %v", resp, err)
	}
	if list, err = cli.AlarmList(ctx); err != nil || len(list.Alarms) != 0 {
		t.Errorf("list after disarm: %v %v", list, err)
	}
}

func TestQuotaRejectsWrites(t *testing.T) {
	fm := newFakeMember(t, Limits{})
	ts := serve(t, fm, Options{})
	cli, ctx := ts.client(t), testCtx(t)
	fill(t, cli, 2)
	fm.set(func(m *fakeMember) { m.noSpace = true })
	if _, err := cli.Put(ctx, "k", "v"); !errors.Is(err, rpctypes.ErrNoSpace) {
		t.Errorf("put over quota: %v, want %v", err, rpctypes.ErrNoSpace)
	}
	put := clientv3.OpPut("k", "v")
	if _, err := cli.Txn(ctx).Then(put).Commit(); !errors.Is(err, rpctypes.ErrNoSpace) {
		t.Errorf("txn with a put over quota: %v", err)
	}
	if _, err := cli.Txn(ctx).Then(clientv3.OpGet("k")).Commit(); err != nil {
		t.Errorf("read-only txn over quota: %v", err)
	}
	if _, err := cli.Delete(ctx, "k", clientv3.WithPrefix()); err != nil {
		t.Errorf("delete over quota: %v", err)
	}
	if _, err := cli.Get(ctx, "k"); err != nil {
		t.Errorf("get over quota: %v", err)
	}
}

func TestHash(t *testing.T) {
	ts := serve(t, newFakeMember(t, Limits{}), Options{})
	cli, ctx := ts.client(t), testCtx(t)
	fill(t, cli, 3)
	m := pb.NewMaintenanceClient(cli.ActiveConnection())
	h, err := m.Hash(ctx, &pb.HashRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want, rev, _ := ts.m.store.Hash()
	checkHeader(t, "hash", h.Header, rev)
	if h.Hash != want || rev != 4 {
		t.Errorf("hash %d rev %d, want %d at 4", h.Hash, h.Header.Revision, want)
	}
}

func TestSnapshotStream(t *testing.T) {
	ts := serve(t, newFakeMember(t, Limits{}), Options{})
	cli, ctx := ts.client(t), testCtx(t)
	fill(t, cli, 20)
	m := pb.NewMaintenanceClient(cli.ActiveConnection())
	s, err := m.Snapshot(ctx, &pb.SnapshotRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var file []byte
	var msgs []*pb.SnapshotResponse
	for {
		resp, err := s.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, resp)
		file = append(file, resp.Blob...)
	}
	if len(file)%512 != 32 {
		t.Fatalf("snapshot is %d bytes, want size %% 512 == 32", len(file))
	}
	last := msgs[len(msgs)-1]
	content := file[:len(file)-32]
	if sum := sha256.Sum256(content); !bytes.Equal(last.Blob, sum[:]) || last.RemainingBytes != 0 {
		t.Errorf("last message %x (remaining %d), want the sha256 %x", last.Blob, last.RemainingBytes, sum)
	}
	sent := 0
	for _, r := range msgs[:len(msgs)-1] {
		sent += len(r.Blob)
		if r.RemainingBytes != uint64(len(content)-sent) || r.Version != "3.7.0" {
			t.Errorf("chunk: remaining %d after %d of %d, version %q", r.RemainingBytes, sent, len(content), r.Version)
		}
	}
	path := filepath.Join(t.TempDir(), "snap.db")
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := mvcc.VerifyBackup(path, false); err != nil {
		t.Errorf("verify: %v", err)
	}
}

func TestMoveLeaderAndDefragment(t *testing.T) {
	ts := serve(t, newFakeMember(t, Limits{}), Options{})
	cli, ctx := ts.client(t), testCtx(t)
	if _, err := cli.MoveLeader(ctx, 0x2f); err != nil {
		t.Errorf("move leader: %v", err)
	}
	if _, err := cli.MoveLeader(ctx, 0x99); !errors.Is(err, rpctypes.ErrBadLeaderTransferee) {
		t.Errorf("move to a non-member: %v", err)
	}
	if _, err := cli.Defragment(ctx, ts.addr); err != nil {
		t.Errorf("defragment: %v", err)
	}
}

func TestDowngradeUnsupported(t *testing.T) {
	ts := serve(t, newFakeMember(t, Limits{}), Options{})
	cli, ctx := ts.client(t), testCtx(t)
	m := pb.NewMaintenanceClient(cli.ActiveConnection())
	_, err := m.Downgrade(ctx, &pb.DowngradeRequest{Action: pb.DowngradeRequest_VALIDATE, Version: "3.6"})
	if status.Code(err) != codes.Unimplemented || !strings.Contains(status.Convert(err).Message(), "Downgrade is not supported") {
		t.Errorf("downgrade: %v", err)
	}
}
