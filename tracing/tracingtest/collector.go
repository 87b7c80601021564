// Package tracingtest is a test kit for distributed tracing: an in-process
// OpenTelemetry collector (the OTLP/gRPC TraceService) on a loopback port
// that keeps the spans it receives, flattened for comparison.
package tracingtest

import (
	"context"
	"encoding/hex"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
)

// MaxSpans bounds the spans a Collector keeps; later ones are counted in
// Dropped.
const MaxSpans = 100000

// Span is one received span with its resource and scope.
type Span struct {
	// Resource holds the resource's attributes (service.name, ...).
	Resource map[string]string
	// Scope is the instrumentation scope's name.
	Scope string
	// Name is the span's name (for a gRPC server span, the method:
	// etcdserverpb.KV/Range).
	Name string
	// Kind is the span kind's OTLP name (SPAN_KIND_SERVER, ...).
	Kind string
	// TraceID, SpanID and ParentSpanID are hex; ParentSpanID is empty for
	// a root span.
	TraceID, SpanID, ParentSpanID string
	// Attributes holds the span's attributes.
	Attributes map[string]string
	// Events are the names of the span's events, in order.
	Events []string
}

// Collector is an OTLP/gRPC trace collector. Start it with Start.
type Collector struct {
	coltracepb.UnimplementedTraceServiceServer
	addr    string
	mu      sync.Mutex
	spans   []Span
	dropped int
}

// Start serves a collector on a loopback port until the test ends.
func Start(t testing.TB) *Collector {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &Collector{addr: ln.Addr().String()}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, c)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return c
}

// Addr is the collector's host:port, for --distributed-tracing-address.
func (c *Collector) Addr() string { return c.addr }

// Export receives spans from an exporter.
func (c *Collector) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		res := attrs(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				if len(c.spans) >= MaxSpans {
					c.dropped++
					continue
				}
				c.spans = append(c.spans, flatten(res, ss.GetScope().GetName(), s))
			}
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func flatten(res map[string]string, scope string, s *tracepb.Span) Span {
	var events []string
	for _, e := range s.GetEvents() {
		events = append(events, e.GetName())
	}
	return Span{Resource: res, Scope: scope, Name: s.GetName(), Kind: s.GetKind().String(),
		TraceID: hex.EncodeToString(s.GetTraceId()), SpanID: hex.EncodeToString(s.GetSpanId()),
		ParentSpanID: hex.EncodeToString(s.GetParentSpanId()), Attributes: attrs(s.GetAttributes()), Events: events}
}

// attrs flattens OTLP attributes to strings (numbers and booleans as
// their text).
func attrs(kvs []*commonpb.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		v := kv.GetValue()
		switch x := v.GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.GetKey()] = x.StringValue
		case *commonpb.AnyValue_IntValue:
			m[kv.GetKey()] = strconv.FormatInt(x.IntValue, 10)
		case *commonpb.AnyValue_BoolValue:
			m[kv.GetKey()] = strconv.FormatBool(x.BoolValue)
		default:
			m[kv.GetKey()] = strings.TrimSpace(v.String())
		}
	}
	return m
}

// Spans returns the spans received so far, in arrival order.
func (c *Collector) Spans() []Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Span(nil), c.spans...)
}

// Dropped is how many spans arrived beyond MaxSpans.
func (c *Collector) Dropped() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dropped
}

// Of returns the spans whose resource attribute key is value.
func Of(spans []Span, key, value string) []Span {
	var out []Span
	for _, s := range spans {
		if s.Resource[key] == value {
			out = append(out, s)
		}
	}
	return out
}

// Names returns the distinct span names of spans, sorted.
func Names(spans []Span) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range spans {
		if !seen[s.Name] {
			seen[s.Name] = true
			out = append(out, s.Name)
		}
	}
	sort.Strings(out)
	return out
}

// Keys returns the sorted keys of m.
func Keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
