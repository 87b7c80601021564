package etcdapi

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/raftnode"
)

// checkHeader fails unless h carries the member's identity and rev.
func checkHeader(t *testing.T, what string, h *pb.ResponseHeader, rev int64) {
	t.Helper()
	want := &pb.ResponseHeader{ClusterId: testClusterID, MemberId: testMemberID, RaftTerm: testRaftTerm, Revision: rev}
	if !proto.Equal(h, want) {
		t.Errorf("%s: header %v, want %v", what, h, want)
	}
}

func TestKVRoundTrip(t *testing.T) {
	ts := serve(t, newFakeMember(t, Limits{}), Options{})
	cli, ctx := ts.client(t), testCtx(t)

	p, err := cli.Put(ctx, "foo", "bar")
	if err != nil {
		t.Fatal(err)
	}
	checkHeader(t, "put", p.Header, 2)
	p, err = cli.Put(ctx, "foo", "baz", clientv3.WithPrevKV())
	if err != nil {
		t.Fatal(err)
	}
	checkHeader(t, "put prev", p.Header, 3)
	if string(p.PrevKv.GetValue()) != "bar" {
		t.Errorf("prev kv %v", p.PrevKv)
	}

	before := ts.m.readIndexes.Load()
	g, err := cli.Get(ctx, "foo")
	if err != nil {
		t.Fatal(err)
	}
	checkHeader(t, "get", g.Header, 3)
	if len(g.Kvs) != 1 || string(g.Kvs[0].Value) != "baz" || g.Kvs[0].Version != 2 || g.Kvs[0].CreateRevision != 2 {
		t.Errorf("get: %v", g.Kvs)
	}
	if ts.m.readIndexes.Load() != before+1 {
		t.Errorf("a linearizable get must wait for a read index")
	}
	if _, err := cli.Get(ctx, "foo", clientv3.WithSerializable()); err != nil {
		t.Fatal(err)
	}
	if ts.m.readIndexes.Load() != before+1 {
		t.Errorf("a serializable get must not wait for a read index")
	}
	g, err = cli.Get(ctx, "foo", clientv3.WithRev(2))
	if err != nil || string(g.Kvs[0].Value) != "bar" {
		t.Errorf("get at rev 2: %v %v", g, err)
	}

	d, err := cli.Delete(ctx, "foo")
	if err != nil {
		t.Fatal(err)
	}
	checkHeader(t, "delete", d.Header, 4)
	if d.Deleted != 1 {
		t.Errorf("deleted %d", d.Deleted)
	}
	g, err = cli.Get(ctx, "foo")
	if err != nil || len(g.Kvs) != 0 || g.Count != 0 {
		t.Errorf("get after delete: %v %v", g, err)
	}
}

func TestTxnRoundTrip(t *testing.T) {
	ts := serve(t, newFakeMember(t, Limits{}), Options{})
	cli, ctx := ts.client(t), testCtx(t)
	if _, err := cli.Put(ctx, "k", "v1"); err != nil {
		t.Fatal(err)
	}

	proposals := ts.m.proposals.Load()
	tr, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.Value("k"), "=", "v1")).
		Then(clientv3.OpPut("k", "v2"), clientv3.OpGet("k")).
		Else(clientv3.OpPut("other", "x")).Commit()
	if err != nil {
		t.Fatal(err)
	}
	if !tr.Succeeded || len(tr.Responses) != 2 {
		t.Fatalf("txn: %v", tr)
	}
	checkHeader(t, "write txn", tr.Header, 3)
	if got := string(tr.Responses[1].GetResponseRange().Kvs[0].Value); got != "v2" {
		t.Errorf("txn reads its own write: %q", got)
	}
	if ts.m.proposals.Load() != proposals+1 {
		t.Errorf("a write txn must be proposed")
	}

	// Read-only: no proposal; a read index unless every range is serializable.
	proposals, reads := ts.m.proposals.Load(), ts.m.readIndexes.Load()
	tr, err = cli.Txn(ctx).If(clientv3.Compare(clientv3.Version("k"), "=", 1)).
		Then(clientv3.OpPut("never", "x")).Else(clientv3.OpGet("k")).Commit()
	if err != nil {
		t.Fatal(err)
	}
	if tr.Succeeded {
		t.Fatalf("compare should fail: %v", tr)
	}
	if ts.m.proposals.Load() != proposals+1 {
		t.Errorf("a txn with a put on either branch is a write")
	}
	proposals = ts.m.proposals.Load()
	tr, err = cli.Txn(ctx).If(clientv3.Compare(clientv3.Version("k"), "=", 2)).
		Then(clientv3.OpGet("k")).Else(clientv3.OpGet("nothing")).Commit()
	if err != nil {
		t.Fatal(err)
	}
	checkHeader(t, "read txn", tr.Header, 3)
	if !tr.Succeeded || string(tr.Responses[0].GetResponseRange().Kvs[0].Value) != "v2" {
		t.Errorf("read txn: %v", tr)
	}
	if ts.m.proposals.Load() != proposals || ts.m.readIndexes.Load() != reads+1 {
		t.Errorf("read-only txn: %d proposals, %d read indexes; want 0 and 1",
			ts.m.proposals.Load()-proposals, ts.m.readIndexes.Load()-reads)
	}
	reads = ts.m.readIndexes.Load()
	if _, err := cli.Txn(ctx).Then(clientv3.OpGet("k", clientv3.WithSerializable())).Commit(); err != nil {
		t.Fatal(err)
	}
	if ts.m.readIndexes.Load() != reads || ts.m.proposals.Load() != proposals {
		t.Errorf("serializable read-only txn must be local")
	}
}

func TestCompactRoundTrip(t *testing.T) {
	ts := serve(t, newFakeMember(t, Limits{}), Options{})
	cli, ctx := ts.client(t), testCtx(t)
	for i := range 4 {
		if _, err := cli.Put(ctx, "k", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	c, err := cli.Compact(ctx, 4, clientv3.WithCompactPhysical())
	if err != nil {
		t.Fatal(err)
	}
	checkHeader(t, "compact", c.Header, 5)
	if _, err := cli.Get(ctx, "k", clientv3.WithRev(3)); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Errorf("get below compaction: %v", err)
	}
	if _, err := cli.Get(ctx, "k", clientv3.WithRev(4)); err != nil {
		t.Errorf("get at compaction: %v", err)
	}
	if _, err := cli.Compact(ctx, 4); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Errorf("compact again: %v", err)
	}
	if _, err := cli.Compact(ctx, 99); !errors.Is(err, rpctypes.ErrFutureRev) {
		t.Errorf("compact the future: %v", err)
	}
	if _, err := cli.Get(ctx, "k", clientv3.WithRev(99)); !errors.Is(err, rpctypes.ErrFutureRev) {
		t.Errorf("get the future: %v", err)
	}
}

// TestValidationReachesClient checks that a request etcd rejects is rejected
// before it reaches the member, with the error clientv3 knows.
func TestValidationReachesClient(t *testing.T) {
	ts := serve(t, newFakeMember(t, Limits{MaxTxnOps: 3}), Options{})
	cli, ctx := ts.client(t), testCtx(t)
	for _, tc := range []struct {
		name string
		op   func() error
		want error
	}{
		{"put empty key", func() error { _, err := cli.Put(ctx, "", "v"); return err }, rpctypes.ErrEmptyKey},
		{"get empty key", func() error { _, err := cli.Get(ctx, ""); return err }, rpctypes.ErrEmptyKey},
		{"delete empty key", func() error { _, err := cli.Delete(ctx, ""); return err }, rpctypes.ErrEmptyKey},
		{"ignore value with a value", func() error { _, err := cli.Put(ctx, "k", "v", clientv3.WithIgnoreValue()); return err }, rpctypes.ErrValueProvided},
		{"ignore lease with a lease", func() error {
			_, err := cli.Put(ctx, "k", "", clientv3.WithIgnoreValue(), clientv3.WithIgnoreLease(), clientv3.WithLease(7))
			return err
		}, rpctypes.ErrLeaseProvided},
		{"too many ops", func() error {
			_, err := cli.Txn(ctx).Then(clientv3.OpPut("a", ""), clientv3.OpPut("b", ""), clientv3.OpPut("c", ""), clientv3.OpPut("d", "")).Commit()
			return err
		}, rpctypes.ErrTooManyOps},
		{"duplicate key", func() error {
			_, err := cli.Txn(ctx).Then(clientv3.OpPut("a", ""), clientv3.OpDelete("a", clientv3.WithPrefix())).Commit()
			return err
		}, rpctypes.ErrDuplicateKey},
		{"duplicate key in nested txn", func() error {
			_, err := cli.Txn(ctx).Then(clientv3.OpPut("a", ""), clientv3.OpTxn(nil, []clientv3.Op{clientv3.OpPut("a", "")}, nil)).Commit()
			return err
		}, rpctypes.ErrDuplicateKey},
	} {
		if err := tc.op(); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	if n := ts.m.proposals.Load(); n != 0 {
		t.Errorf("%d invalid requests reached Propose", n)
	}

	// Sort options clientv3 cannot produce, through the raw stub.
	kv := pb.NewKVClient(cli.ActiveConnection())
	_, err := kv.Range(ctx, &pb.RangeRequest{Key: []byte("a"), SortOrder: 9})
	if rpctypes.Error(err) != rpctypes.ErrInvalidSortOption {
		t.Errorf("bad sort order: %v", err)
	}
	_, err = kv.Txn(ctx, &pb.TxnRequest{Success: []*pb.RequestOp{{}}})
	if rpctypes.Error(err) != rpctypes.ErrKeyNotFound {
		t.Errorf("empty txn op: %v", err)
	}
}

// TestErrorsReachClient checks that each member error reaches clientv3 as
// etcd's rpctypes error, on the write path and on the read path.
func TestErrorsReachClient(t *testing.T) {
	m := newFakeMember(t, Limits{})
	ts := serve(t, m, Options{})
	cli, ctx := ts.client(t), testCtx(t)
	for _, tc := range grpcCases {
		m.set(func(m *fakeMember) { m.proposeErr = tc.err })
		_, err := cli.Put(ctx, "k", "v")
		if !errors.Is(err, tc.client) {
			t.Errorf("put, member says %v: client got %v, want %v", tc.err, err, tc.client)
		}
	}
	m.set(func(m *fakeMember) { m.proposeErr = nil })

	for _, e := range []error{raftnode.ErrLeaderChanged, raftnode.ErrNoLeader, raftnode.ErrTimeout, raftnode.ErrStopped} {
		m.set(func(m *fakeMember) { m.readIndexErr = fmt.Errorf("read index: %w", e) })
		want := rpctypes.Error(toGRPCError(e))
		if _, err := cli.Get(ctx, "k"); !errors.Is(err, want) {
			t.Errorf("get, read index says %v: client got %v, want %v", e, err, want)
		}
		if _, err := cli.Txn(ctx).Then(clientv3.OpGet("k")).Commit(); !errors.Is(err, want) {
			t.Errorf("read txn, read index says %v: client got %v, want %v", e, err, want)
		}
	}
	m.set(func(m *fakeMember) { m.readIndexErr = nil })

	// Request-level mvcc errors raised by the store on apply.
	if _, err := cli.Put(ctx, "missing", "", clientv3.WithIgnoreValue()); !errors.Is(err, rpctypes.ErrKeyNotFound) {
		t.Errorf("ignore value on a missing key: %v", err)
	}
	if _, err := cli.Put(ctx, "k", "v", clientv3.WithLease(12345)); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Errorf("unknown lease: %v", err)
	}

	// An error synod does not know about keeps its message.
	m.set(func(m *fakeMember) { m.proposeErr = errors.New("disk on fire") })
	_, err := cli.Put(ctx, "k", "v")
	if s := status.Convert(err); s.Code() != codes.Unknown || s.Message() != "disk on fire" {
		t.Errorf("unknown error: %v", err)
	}
	// A member answering with the wrong message is an internal error.
	m.set(func(m *fakeMember) { m.proposeErr, m.proposeResp = nil, &pb.TxnResponse{} })
	if _, err = cli.Put(ctx, "k", "v"); status.Code(err) != codes.Internal {
		t.Errorf("wrong response type: %v", err)
	}
}

func TestRequestTooLarge(t *testing.T) {
	const limit = 1024
	ts := serve(t, newFakeMember(t, Limits{MaxRequestBytes: limit}), Options{})
	cli, ctx := ts.client(t), testCtx(t)

	if _, err := cli.Put(ctx, "k", strings.Repeat("v", limit)); !errors.Is(err, rpctypes.ErrRequestTooLarge) {
		t.Errorf("put over the limit: %v", err)
	}
	big := clientv3.OpPut("k", strings.Repeat("v", limit))
	if _, err := cli.Txn(ctx).Then(big).Commit(); !errors.Is(err, rpctypes.ErrRequestTooLarge) {
		t.Errorf("txn over the limit: %v", err)
	}
	if n := ts.m.proposals.Load(); n != 0 {
		t.Errorf("%d oversized requests reached Propose", n)
	}
	// Beyond the gRPC allowance the transport refuses the message itself.
	_, err := cli.Put(ctx, "k", strings.Repeat("v", limit+grpcOverheadBytes))
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("put over the gRPC limit: %v", err)
	}

	// Find the largest value that fits: every proposal must stay within the
	// limit, header included, and one byte more must be refused.
	fits := 0
	for n := limit - 64; n < limit; n++ {
		_, err := cli.Put(ctx, "k", strings.Repeat("v", n))
		if err == nil {
			fits = n
			continue
		}
		if !errors.Is(err, rpctypes.ErrRequestTooLarge) {
			t.Fatalf("put of %d bytes: %v", n, err)
		}
	}
	if fits == 0 {
		t.Fatal("no value near the limit fits")
	}
	if b := ts.m.biggest.Load(); b > limit || b < limit-10 {
		t.Errorf("largest proposal %d bytes, want within 10 bytes below the limit %d", b, limit)
	}
}

// TestPanicIsInternal checks that a panicking member yields codes.Internal,
// is logged, and leaves the server serving.
func TestPanicIsInternal(t *testing.T) {
	logs := &logBuffer{}
	m := newFakeMember(t, Limits{})
	ts := serve(t, m, Options{Logger: newTestLogger(logs)})
	cli, ctx := ts.client(t), testCtx(t)

	m.set(func(m *fakeMember) { m.panicking = true })
	_, err := cli.Put(ctx, "k", "v")
	if status.Code(err) != codes.Internal {
		t.Errorf("put with a panicking member: %v", err)
	}
	stream, err := cli.GetStream(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := clientv3.GetStreamToGetResponse(stream); status.Code(err) != codes.Internal {
		t.Errorf("range stream with a panicking member: %v", err)
	}
	m.set(func(m *fakeMember) { m.panicking = false })

	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Errorf("server stopped serving after a panic: %v", err)
	}
	for _, want := range []string{"told to panic", "/etcdserverpb.KV/Put", "/etcdserverpb.KV/RangeStream", "goroutine"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}
