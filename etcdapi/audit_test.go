package etcdapi

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	"github.com/synod-db/synod/audit"
)

// denySecret stands in for an authorization layer inside the audit
// interceptors: reads of "secret" and watches on it are refused as etcd
// refuses them.
func denySecret() []grpc.ServerOption {
	unary := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if r, ok := req.(*pb.RangeRequest); ok && string(r.GetKey()) == "secret" {
			return nil, rpctypes.ErrGRPCPermissionDenied
		}
		return h(ctx, req)
	}
	stream := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		if info.FullMethod != "/etcdserverpb.Watch/Watch" {
			return h(srv, ss)
		}
		for {
			var req pb.WatchRequest
			if err := ss.RecvMsg(&req); err != nil {
				return nil
			}
			if err := ss.SendMsg(&pb.WatchResponse{Header: &pb.ResponseHeader{Revision: 1}, WatchId: -1, Created: true,
				Canceled: true, CancelReason: rpctypes.ErrGRPCPermissionDenied.Error()}); err != nil {
				return err
			}
		}
	}
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(unary), grpc.ChainStreamInterceptor(stream)}
}

// TestAuditAuthDecisions: refusals by an inner auth layer are audited even
// for reads (unary, and a watch refused on its stream), with the identity
// the hook gives; allowed reads are not; passwords never appear.
func TestAuditAuthDecisions(t *testing.T) {
	var out logBuffer
	l, err := audit.Open(audit.Config{Output: &out, Identity: func(context.Context) string { return "carol" }})
	if err != nil {
		t.Fatal(err)
	}
	ts := serve(t, newFakeMember(t, Limits{}), Options{Audit: l, ServerOptions: denySecret()})
	cli, ctx := ts.client(t), testCtx(t)

	if _, err := cli.Get(ctx, "public"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Get(ctx, "secret"); err == nil {
		t.Fatal("read of secret allowed")
	}
	if _, err := cli.Authenticate(ctx, "carol", "hunter2"); err == nil {
		t.Fatal("authenticate succeeded")
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for wr := range cli.Watch(wctx, "secret", clientv3.WithPrefix()) {
		if wr.Canceled {
			break
		}
	}
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	cli.Close()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	type line struct{ User, RPC, Key, RangeEnd, Outcome, Message string }
	var got []line
	for _, s := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m struct {
			User     string `json:"user"`
			RPC      string `json:"rpc"`
			Key      string `json:"key"`
			RangeEnd string `json:"range_end"`
			Outcome  string `json:"outcome"`
			Message  string `json:"message"`
		}
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		got = append(got, line{m.User, m.RPC, m.Key, m.RangeEnd, m.Outcome, m.Message})
	}
	want := []line{
		{"carol", "/etcdserverpb.KV/Range", "secret", "", "PermissionDenied", "etcdserver: permission denied"},
		// Every Auth RPC is audited (here auth is off, as etcd answers).
		{"carol", "/etcdserverpb.Auth/Authenticate", "", "", "FailedPrecondition", "etcdserver: authentication is not enabled"},
		{"carol", "/etcdserverpb.Watch/Watch", "secret", "secreu", "PermissionDenied", "etcdserver: permission denied"},
		{"carol", "/etcdserverpb.KV/Put", "k", "", "OK", ""},
	}
	if len(got) != len(want) {
		t.Fatalf("audit lines:\n%s", out.String())
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if strings.Contains(out.String(), "hunter2") {
		t.Errorf("a password reached the audit log")
	}
}
