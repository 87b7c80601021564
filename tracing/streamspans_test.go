package tracing

import (
	"context"
	"strings"
	"testing"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// scriptStream is a grpc.ServerStream that receives a fixed list of
// requests.
type scriptStream struct {
	grpc.ServerStream
	in []any
}

func (s *scriptStream) Context() context.Context { return context.Background() }

func (s *scriptStream) RecvMsg(m any) error {
	next := s.in[0]
	s.in = s.in[1:]
	proto.Merge(m.(proto.Message), next.(proto.Message))
	return nil
}

func (s *scriptStream) SendMsg(any) error { return nil }

// runStream drives the interceptor for method with handler and returns
// the ended spans, as "name attr=value ...".
func runStream(t *testing.T, method string, in []any, handler func(grpc.ServerStream)) []string {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	icpt := etcdStreamSpans(tp.Tracer(EtcdScope))
	err := icpt(nil, &scriptStream{in: in}, &grpc.StreamServerInfo{FullMethod: method}, func(_ any, ss grpc.ServerStream) error {
		handler(ss)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range rec.Ended() {
		parts := []string{s.Name()}
		for _, a := range s.Attributes() {
			if a.Key == "key" || a.Key == "range_end" || a.Key == "id" {
				parts = append(parts, string(a.Key)+"="+a.Value.Emit())
			}
		}
		out = append(out, strings.Join(parts, " "))
	}
	return out
}

func create(key, end string) *etcdserverpb.WatchRequest {
	return &etcdserverpb.WatchRequest{RequestUnion: &etcdserverpb.WatchRequest_CreateRequest{
		CreateRequest: &etcdserverpb.WatchCreateRequest{Key: []byte(key), RangeEnd: []byte(end)}}}
}

// A watcher's span lasts from its creation to its cancelation or the
// stream's end; a refused watch exports none.
func TestWatchSpans(t *testing.T) {
	got := runStream(t, "/etcdserverpb.Watch/Watch", []any{create("a", ""), create("b", "\x00"), create("c", "d"), create("e", "")},
		func(ss grpc.ServerStream) {
			for i := 0; i < 4; i++ {
				_ = ss.RecvMsg(&etcdserverpb.WatchRequest{})
			}
			_ = ss.SendMsg(&etcdserverpb.WatchResponse{Created: true, WatchId: 0})
			_ = ss.SendMsg(&etcdserverpb.WatchResponse{Created: true, Canceled: true, WatchId: -1}) // refused
			_ = ss.SendMsg(&etcdserverpb.WatchResponse{Created: true, WatchId: 1})
			_ = ss.SendMsg(&etcdserverpb.WatchResponse{Canceled: true, WatchId: 1})
			_ = ss.SendMsg(&etcdserverpb.WatchResponse{WatchId: 0}) // events: nothing ends
		})
	want := "watch key=c range_end=d|watch key=a range_end=" // c canceled first; a ends with the stream; e never created
	if strings.Join(got, "|") != want {
		t.Errorf("spans %q, want %q", got, want)
	}
}

// A keep-alive's span ends at its answer; one never answered is dropped.
func TestLeaseRenewSpans(t *testing.T) {
	got := runStream(t, "/etcdserverpb.Lease/LeaseKeepAlive",
		[]any{&etcdserverpb.LeaseKeepAliveRequest{ID: 7}, &etcdserverpb.LeaseKeepAliveRequest{ID: 8}},
		func(ss grpc.ServerStream) {
			_ = ss.RecvMsg(&etcdserverpb.LeaseKeepAliveRequest{})
			_ = ss.RecvMsg(&etcdserverpb.LeaseKeepAliveRequest{})
			_ = ss.SendMsg(&etcdserverpb.LeaseKeepAliveResponse{ID: 7})
		})
	if strings.Join(got, "|") != "lease_renew id=7" {
		t.Errorf("spans %q", got)
	}
	if got := runStream(t, "/etcdserverpb.Maintenance/Snapshot", nil, func(grpc.ServerStream) {}); len(got) != 0 {
		t.Errorf("a stream etcd starts no span for: %q", got)
	}
}
