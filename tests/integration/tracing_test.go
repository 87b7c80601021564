package integration

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"
	"google.golang.org/grpc/metadata"

	"github.com/synod-db/synod/server"
	"github.com/synod-db/synod/tracing"
	"github.com/synod-db/synod/tracing/tracingtest"
)

// A traceparent a client sends (W3C trace-context): trace and parent span,
// sampled or not.
const (
	parentTrace     = "4bf92f3577b34da6a3ce929d0e0e4736"
	parentSpan      = "00f067aa0ba902b7"
	sampledParent   = "00-" + parentTrace + "-" + parentSpan + "-01"
	unsampledParent = "00-" + parentTrace + "-" + parentSpan + "-00"
)

// tracedMember starts a one-member cluster tracing to addr with the given
// instance ID and sampling rate.
func tracedMember(t *testing.T, addr, instance string, rate int) *cluster {
	return newCluster(t, 1, func(c *server.Config) {
		c.Tracing = tracing.Config{Enabled: true, Address: addr, ServiceName: "synod-it", InstanceID: instance, SamplingRate: rate}
	})
}

// Every client RPC, the gateway's included, is a server span named for its
// method, exported with the configured resource; a client's sampled
// traceparent is continued. Stop flushes the spans still queued (the batch
// processor exports every 5 s, so they arrive only through that flush).
func TestTracingExportsClientRPCs(t *testing.T) {
	col := tracingtest.Start(t)
	c := tracedMember(t, col.Addr(), "m0-instance", tracing.MaxSamplingRate)
	cli := c.client()
	if _, err := cli.Put(ctx(t), "k", "v"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Get(ctx(t), "k"); err != nil {
		t.Fatal(err)
	}
	gwPut(t, c, "gw", []byte("v"))
	lease, err := cli.Grant(ctx(t), 60) // the member picks the ID
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Get(metadata.AppendToOutgoingContext(ctx(t), "traceparent", sampledParent), "k"); err != nil {
		t.Fatal(err)
	}
	c.stopAll()
	spans := tracingtest.Of(col.Spans(), "service.instance.id", "m0-instance")
	puts, ranges := 0, 0
	var continued []tracingtest.Span
	children := map[string]string{} // parent span ID -> etcd's child span's name
	for _, s := range spans {
		if s.Resource["service.name"] != "synod-it" {
			t.Errorf("span %s: resource %v", s.Name, s.Resource)
		}
		if s.Scope == tracing.EtcdScope {
			children[s.ParentSpanID] = s.Name
			if s.Name == "lease_grant" && s.Attributes["id"] != fmt.Sprint(int64(lease.ID)) {
				t.Errorf("lease_grant span's id %s, want the granted lease's %d", s.Attributes["id"], lease.ID)
			}
			continue
		}
		if s.Kind != "SPAN_KIND_SERVER" {
			t.Errorf("span %s: kind %s", s.Name, s.Kind)
		}
		switch s.Name {
		case "etcdserverpb.KV/Put":
			puts++
		case "etcdserverpb.KV/Range":
			ranges++
		}
		if s.TraceID == parentTrace {
			continued = append(continued, s)
		}
	}
	for _, s := range spans {
		want := map[string]string{"etcdserverpb.KV/Put": "put", "etcdserverpb.KV/Range": "range"}[s.Name]
		if want != "" && children[s.SpanID] != want {
			t.Errorf("%s span has child %q, want etcd's %q", s.Name, children[s.SpanID], want)
		}
	}
	if puts != 2 || ranges != 2 {
		t.Errorf("%d Put and %d Range spans, want 2 (one through the gateway) and 2; got %v", puts, ranges, tracingtest.Names(spans))
	}
	if len(continued) != 1 || continued[0].Name != "etcdserverpb.KV/Range" || continued[0].ParentSpanID != parentSpan {
		t.Errorf("the client's trace is not continued by one Range span under its parent: %+v", continued)
	}
}

// With a sampling rate of 0 no root span is sampled; a caller's sampled
// trace still is (the sampler is parent-based), and an unsampled one not.
func TestTracingSamplingRateZero(t *testing.T) {
	col := tracingtest.Start(t)
	c := tracedMember(t, col.Addr(), "m0-zero", 0)
	cli := c.client()
	for i := 0; i < 20; i++ {
		if _, err := cli.Put(ctx(t), "k", "v"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Get(metadata.AppendToOutgoingContext(ctx(t), "traceparent", unsampledParent), "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(metadata.AppendToOutgoingContext(ctx(t), "traceparent", sampledParent), "k", "v"); err != nil {
		t.Fatal(err)
	}
	c.stopAll()
	spans := tracingtest.Of(col.Spans(), "service.instance.id", "m0-zero")
	if names := tracingtest.Names(spans); len(spans) != 2 || strings.Join(names, " ") != "etcdserverpb.KV/Put put" {
		t.Errorf("want only the sampled caller's Put (server span and etcd's child), got %+v", spans)
	}
	for _, s := range spans {
		if s.TraceID != parentTrace {
			t.Errorf("span %s of trace %s, not the caller's", s.Name, s.TraceID)
		}
	}
}

// A collector that accepts connections and never answers holds no request
// up, and Stop gives up flushing to it within tracing.ShutdownTimeout.
func TestTracingUnresponsiveCollector(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() { // accept and hold every connection, reading nothing
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { conn.Close() })
		}
	}()
	c := tracedMember(t, ln.Addr().String(), "m0-stuck", tracing.MaxSamplingRate)
	cli := c.client()
	start := time.Now()
	for i := 0; i < 2100; i++ { // more than the batch processor's queue (2048)
		if _, err := cli.Put(ctx(t), "k", "v"); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("2100 puts in %v", time.Since(start))
	start = time.Now()
	c.stopAll()
	if d := time.Since(start); d > tracing.ShutdownTimeout+3*time.Second {
		t.Errorf("Stop took %v with an unresponsive collector, want about %v at most", d, tracing.ShutdownTimeout)
	}
}

// The reads and writes the Lock service makes through the member's client
// of itself are spans of the Lock call's trace, under its server span, as
// etcd's in-process lock calls are.
func TestTracingLockJoinsTheCallersTrace(t *testing.T) {
	col := tracingtest.Start(t)
	c := tracedMember(t, col.Addr(), "m0-lock", 0)
	cli := c.client()
	lease, err := cli.Grant(ctx(t), 60)
	if err != nil {
		t.Fatal(err)
	}
	lctx := metadata.AppendToOutgoingContext(ctx(t), "traceparent", sampledParent)
	if _, err := v3lockpb.NewLockClient(cli.ActiveConnection()).Lock(lctx, &v3lockpb.LockRequest{Name: []byte("l"), Lease: int64(lease.ID)}); err != nil {
		t.Fatal(err)
	}
	c.stopAll()
	spans := tracingtest.Of(col.Spans(), "service.instance.id", "m0-lock")
	byID := map[string]tracingtest.Span{}
	lockSpan := ""
	for _, s := range spans {
		byID[s.SpanID] = s
		if s.Name == "v3lockpb.Lock/Lock" && s.ParentSpanID == parentSpan {
			lockSpan = s.SpanID
		}
	}
	if lockSpan == "" {
		t.Fatalf("no Lock span under the caller's: %v", tracingtest.Names(spans))
	}
	inner := 0
	for _, s := range spans {
		if s.TraceID != parentTrace {
			t.Errorf("span %s outside the caller's trace (rate 0: only the caller's trace is sampled)", s.Name)
		}
		if s.Kind == "SPAN_KIND_SERVER" && s.Name != "v3lockpb.Lock/Lock" {
			if byID[s.ParentSpanID].Name == "" && s.ParentSpanID != lockSpan {
				t.Errorf("%s's parent %s is not a span of the Lock call", s.Name, s.ParentSpanID)
			}
			inner++
		}
	}
	if inner == 0 {
		t.Errorf("the lock's own calls are not in the caller's trace: %v", tracingtest.Names(spans))
	}
}
