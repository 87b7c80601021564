package etcdapi

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// TestEndpointHealth does what `etcdctl endpoint health` does: a
// linearizable Get of "health" and an alarm list; plus the standard gRPC
// health check, and its owner turning it off.
func TestEndpointHealth(t *testing.T) {
	hs := health.NewServer()
	ts := serve(t, newFakeMember(t, Limits{}), Options{Health: hs})
	cli, ctx := ts.client(t), testCtx(t)

	reads := ts.m.readIndexes.Load()
	if _, err := cli.Get(ctx, "health"); err != nil {
		t.Errorf("get health: %v", err)
	}
	if ts.m.readIndexes.Load() != reads+1 {
		t.Errorf("the health get must be linearizable")
	}
	if resp, err := cli.AlarmList(ctx); err != nil || len(resp.Alarms) != 0 {
		t.Errorf("alarm list: %v %v", resp, err)
	}

	hc := healthpb.NewHealthClient(cli.ActiveConnection())
	resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: ""})
	if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health check: %v %v", resp, err)
	}
	hs.Shutdown()
	resp, err = hc.Check(ctx, &healthpb.HealthCheckRequest{Service: ""})
	if err != nil || resp.Status != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("health check after shutdown: %v %v", resp, err)
	}
}

// TestUnimplementedServices checks that the services synod does not serve
// yet say so, for unary and streaming RPCs alike.
func TestUnimplementedServices(t *testing.T) {
	ts := serve(t, newFakeMember(t, Limits{}), Options{})
	cli, ctx := ts.client(t), testCtx(t)
	conn := cli.ActiveConnection()
	stream := func(desc *grpc.StreamDesc, method string) error {
		s, err := conn.NewStream(ctx, desc, method)
		if err != nil {
			return err
		}
		// The server may answer before the request is sent: SendMsg then
		// says io.EOF and RecvMsg has the status.
		if err := s.SendMsg(&emptypb.Empty{}); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		return s.RecvMsg(&emptypb.Empty{})
	}
	for _, tc := range []struct {
		service string
		call    func() error
	}{
		{"Lock", func() error { return conn.Invoke(ctx, "/v3lockpb.Lock/Lock", &emptypb.Empty{}, &emptypb.Empty{}) }},
		{"Lock", func() error { return conn.Invoke(ctx, "/v3lockpb.Lock/Unlock", &emptypb.Empty{}, &emptypb.Empty{}) }},
		{"Election", func() error {
			return conn.Invoke(ctx, "/v3electionpb.Election/Campaign", &emptypb.Empty{}, &emptypb.Empty{})
		}},
		{"Election", func() error {
			return stream(&grpc.StreamDesc{StreamName: "Observe", ServerStreams: true}, "/v3electionpb.Election/Observe")
		}},
	} {
		err := tc.call()
		want := "synod: " + tc.service + " is not implemented yet"
		if status.Code(err) != codes.Unimplemented || status.Convert(err).Message() != want {
			t.Errorf("%s: got %v, want Unimplemented %q", tc.service, err, want)
		}
	}
	// A method no service has stays gRPC's own answer.
	err := conn.Invoke(ctx, "/v3lockpb.Lock/Steal", &emptypb.Empty{}, &emptypb.Empty{})
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("unknown method: %v", err)
	}
}

func TestNewGRPCServerRegistersEverything(t *testing.T) {
	gs := NewGRPCServer(newFakeMember(t, Limits{}).backends(), Options{})
	defer gs.Stop()
	info := gs.GetServiceInfo()
	for _, svc := range []string{
		"etcdserverpb.KV", "etcdserverpb.Maintenance", "etcdserverpb.Cluster", "grpc.health.v1.Health",
		"etcdserverpb.Watch", "etcdserverpb.Lease", "etcdserverpb.Auth", "v3lockpb.Lock", "v3electionpb.Election",
	} {
		if _, ok := info[svc]; !ok {
			t.Errorf("%s is not registered", svc)
		}
	}
	if n := len(info["etcdserverpb.Auth"].Methods); n != len(pb.Auth_ServiceDesc.Methods) {
		t.Errorf("Auth has %d methods, want %d", n, len(pb.Auth_ServiceDesc.Methods))
	}
}

func TestOptionsDefaults(t *testing.T) {
	o := Options{}.withDefaults(Limits{})
	if o.MaxRequestBytes != DefaultMaxRequestBytes || o.MaxConcurrentStreams != DefaultMaxConcurrentStreams ||
		o.KeepaliveMinTime != 5*time.Second || o.KeepaliveInterval != 2*time.Hour || o.KeepaliveTimeout != 20*time.Second ||
		o.SlowRequest != 300*time.Millisecond || o.Logger == nil || o.Health == nil {
		t.Errorf("defaults: %+v", o)
	}
	if got := (Options{}).withDefaults(Limits{MaxRequestBytes: 4096}).MaxRequestBytes; got != 4096 {
		t.Errorf("request limit from the member: %d", got)
	}
	if got := (Options{MaxRequestBytes: 10}).withDefaults(Limits{MaxRequestBytes: 4096}).MaxRequestBytes; got != 10 {
		t.Errorf("explicit request limit: %d", got)
	}
	if l := (Limits{}).withDefaults(); l.MaxTxnOps != 128 || l.MaxRequestBytes != 1536*1024 {
		t.Errorf("limits defaults: %+v", l)
	}
}

func TestSlowRequestsAreLogged(t *testing.T) {
	for _, tc := range []struct {
		name   string
		slow   time.Duration
		logged bool
	}{
		{"slow", time.Nanosecond, true},
		{"fast", time.Hour, false},
	} {
		logs := &logBuffer{}
		lg := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
		ts := serve(t, newFakeMember(t, Limits{}), Options{Logger: lg, SlowRequest: tc.slow})
		if _, err := ts.client(t).Put(testCtx(t), "k", "secret-value"); err != nil {
			t.Fatal(err)
		}
		out := logs.String()
		if got := strings.Contains(out, "/etcdserverpb.KV/Put"); got != tc.logged {
			t.Errorf("%s: logged %v, want %v:\n%s", tc.name, got, tc.logged, out)
		}
		if strings.Contains(out, "secret-value") {
			t.Errorf("%s: the log shows a value", tc.name)
		}
	}
}

// Every backend is required: a Backends with one left out is refused at
// construction, naming it, instead of a service answering Unimplemented.
func TestNewGRPCServerRefusesAMissingBackend(t *testing.T) {
	full := newFakeMember(t, Limits{}).backends()
	for name, clear := range map[string]func(*Backends){
		"Raft": func(b *Backends) { b.Raft = nil }, "KV": func(b *Backends) { b.KV = nil },
		"Member": func(b *Backends) { b.Member = nil }, "Quota": func(b *Backends) { b.Quota = nil },
		"Cluster": func(b *Backends) { b.Cluster = nil }, "Maintenance": func(b *Backends) { b.Maintenance = nil },
		"Leases": func(b *Backends) { b.Leases = nil }, "LeaseGrants": func(b *Backends) { b.LeaseGrants = nil },
		"Watch": func(b *Backends) { b.Watch = nil }, "Leader": func(b *Backends) { b.Leader = nil },
		"Auth": func(b *Backends) { b.Auth = nil },
	} {
		b := full
		clear(&b)
		func() {
			defer func() {
				if got, want := fmt.Sprint(recover()), "etcdapi: Backends."+name+" is nil"; got != want {
					t.Errorf("without %s: panic %q, want %q", name, got, want)
				}
			}()
			NewGRPCServer(b, Options{}).Stop()
		}()
	}
}
