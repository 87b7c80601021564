package e2e

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/metadata"

	"github.com/synod-db/synod/tracing/tracingtest"
)

// traceStep is one request of the tracing transcript, made under its own
// W3C traceparent so that its spans can be told apart.
type traceStep struct {
	title   string
	flags   string // the traceparent's flags: "01" sampled, "00" not
	gateway bool   // sent through the JSON gateway
	stream  bool   // a stream the client ends: its status (OK or CANCELLED) depends on timing, in etcd too
	do      func(ctx context.Context, m *Member, cli *clientv3.Client) error
}

// traceSteps cover every call etcd starts a child span for, the gateway,
// and an unsampled caller.
var traceSteps = []traceStep{
	{title: "put tr/k1", do: func(ctx context.Context, _ *Member, cli *clientv3.Client) error {
		_, err := cli.Put(ctx, "tr/k1", "v")
		return err
	}},
	{title: "get tr/ --prefix --limit=5 --keys-only", do: func(ctx context.Context, _ *Member, cli *clientv3.Client) error {
		_, err := cli.Get(ctx, "tr/", clientv3.WithPrefix(), clientv3.WithLimit(5), clientv3.WithKeysOnly())
		return err
	}},
	{title: "txn if tr/k1=v then put tr/k2, get tr/k1 else get tr/k1", do: func(ctx context.Context, _ *Member, cli *clientv3.Client) error {
		_, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.Value("tr/k1"), "=", "v")).
			Then(clientv3.OpPut("tr/k2", "x"), clientv3.OpGet("tr/k1")).Else(clientv3.OpGet("tr/k1")).Commit()
		return err
	}},
	{title: "read-only txn", do: func(ctx context.Context, _ *Member, cli *clientv3.Client) error {
		_, err := cli.Txn(ctx).Then(clientv3.OpGet("tr/k1", clientv3.WithCountOnly())).Commit()
		return err
	}},
	{title: "del tr/k2 --prefix", do: func(ctx context.Context, _ *Member, cli *clientv3.Client) error {
		_, err := cli.Delete(ctx, "tr/k2", clientv3.WithPrefix())
		return err
	}},
	{title: "lease grant ID 7 TTL 60", do: func(ctx context.Context, _ *Member, cli *clientv3.Client) error {
		_, err := etcdserverpb.NewLeaseClient(cli.ActiveConnection()).LeaseGrant(ctx, &etcdserverpb.LeaseGrantRequest{ID: 7, TTL: 60})
		return err
	}},
	{title: "lease keep-alive-once 7", stream: true, do: func(ctx context.Context, _ *Member, cli *clientv3.Client) error {
		_, err := cli.KeepAliveOnce(ctx, 7)
		return err
	}},
	{title: "watch tr/w --prev-kv from revision 1, canceled after its creation", stream: true, do: watchOnce},
	{title: "lease revoke 7", do: func(ctx context.Context, _ *Member, cli *clientv3.Client) error {
		_, err := cli.Revoke(ctx, 7)
		return err
	}},
	{title: "compact 2 --physical", do: func(ctx context.Context, _ *Member, cli *clientv3.Client) error {
		_, err := cli.Compact(ctx, 2, clientv3.WithCompactPhysical())
		return err
	}},
	{title: "status", do: func(ctx context.Context, m *Member, cli *clientv3.Client) error {
		_, err := cli.Status(ctx, m.Endpoint)
		return err
	}},
	{title: "put tr/gw through the gateway (Grpc-Metadata-Traceparent)", gateway: true},
	{title: "put tr/unsampled with an unsampled traceparent", flags: "00", do: func(ctx context.Context, _ *Member, cli *clientv3.Client) error {
		_, err := cli.Put(ctx, "tr/unsampled", "v")
		return err
	}},
}

// watchOnce creates a watcher on a stream of its own (a new client), waits
// for its creation and cancels it; the stream ends with the client.
func watchOnce(ctx context.Context, m *Member, _ *clientv3.Client) error {
	cli, err := dialClient(m.Endpoint)
	if err != nil {
		return err
	}
	defer cli.Close()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wch := cli.Watch(wctx, "tr/w", clientv3.WithPrevKV(), clientv3.WithRev(1), clientv3.WithCreatedNotify())
	if resp, ok := <-wch; !ok || !resp.Created {
		return fmt.Errorf("watch not created: %v", resp.Err())
	}
	cancel()
	for range wch { // closed once the cancelation is through
	}
	return nil
}

// TestDistributedTracing: a member started with etcd's tracing flags sends
// its spans to an OTLP collector (in this process): for each request of
// traceSteps, the spans of its trace (server span named for the method,
// etcd's child span, their attributes, the caller's trace continued), and
// the resource; a request without a traceparent is sampled at the rate
// (here every one). Compared with etcd live and with the golden recorded
// from it (-run 'TestDistributedTracing/etcd' -update).
func TestDistributedTracing(t *testing.T) {
	col := tracingtest.Start(t)
	for _, kind := range kinds() {
		t.Run(kind, func(t *testing.T) {
			checkUpdatable(t, kind)
			instance := "e2e-" + kind
			cl := startCluster(t, kind, 1, "--enable-distributed-tracing", "--distributed-tracing-address="+col.Addr(),
				"--distributed-tracing-service-name=e2e-tracing", "--distributed-tracing-instance-id="+instance,
				"--distributed-tracing-sampling-rate=1000000")
			m := cl.Members[0]
			cli := newClient(t, m.Endpoint)
			ids := runTraceSteps(t, m, cli)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := cli.Put(ctx, "tr/root", "v"); err != nil { // no traceparent: a root span
				t.Fatal(err)
			}
			cl.Stop() // SIGTERM: the member flushes its spans before it exits
			got := traceTranscript(tracingtest.Of(col.Spans(), "service.instance.id", instance), ids, instance)
			if recordGolden(t, kind, "tracing", got) {
				return
			}
			compareGolden(t, kind, "tracing", got)
		})
	}
}

// runTraceSteps runs traceSteps, each under a traceparent of its own, and
// returns their trace IDs.
func runTraceSteps(t *testing.T, m *Member, cli *clientv3.Client) []string {
	var ids []string
	for i, s := range traceSteps {
		id := fmt.Sprintf("%032x", 0x5a000+i)
		ids = append(ids, id)
		flags := s.flags
		if flags == "" {
			flags = "01"
		}
		parent := "00-" + id + "-00000000000000aa-" + flags
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var err error
		if s.gateway {
			err = gatewayPut(ctx, m, parent)
		} else {
			err = s.do(metadata.AppendToOutgoingContext(ctx, "traceparent", parent), m, cli)
		}
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", s.title, err)
		}
	}
	return ids
}

// gatewayPut puts tr/gw through the JSON gateway, passing traceparent as
// grpc-gateway forwards metadata.
func gatewayPut(ctx context.Context, m *Member, traceparent string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.ClientURL+"/v3/kv/put", strings.NewReader(`{"key":"dHIvZ3c=","value":"dg=="}`))
	if err != nil {
		return err
	}
	req.Header.Set("Grpc-Metadata-Traceparent", traceparent)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

// traceTranscript renders the resource, the spans of each step's trace,
// and the root traces of Puts (the last request), in a stable form.
func traceTranscript(spans []tracingtest.Span, ids []string, instance string) string {
	var b strings.Builder
	b.WriteString("=== resource\n")
	if len(spans) > 0 {
		for _, k := range tracingtest.Keys(spans[0].Resource) {
			fmt.Fprintf(&b, "%s=%s\n", k, strings.ReplaceAll(spans[0].Resource[k], instance, "<instance>"))
		}
	}
	byTrace := map[string][]tracingtest.Span{}
	for _, s := range spans {
		byTrace[s.TraceID] = append(byTrace[s.TraceID], s)
	}
	known := map[string]bool{}
	for i, s := range traceSteps {
		known[ids[i]] = true
		fmt.Fprintf(&b, "=== %s\n%s", s.title, renderTrace(byTrace[ids[i]], s))
	}
	var roots []string
	for id, trace := range byTrace {
		if r := renderTrace(trace, traceStep{}); !known[id] && strings.Contains(r, "key=tr/root") {
			roots = append(roots, r)
		}
	}
	fmt.Fprintf(&b, "=== put tr/root without a traceparent (sampling rate 1000000): %d trace(s)\n%s", len(roots), strings.Join(roots, ""))
	return b.String()
}

// renderTrace prints a trace's spans, parents first: name, kind, scope,
// parent (the caller's span, or the server span), attributes and events;
// ports are not shown.
func renderTrace(trace []tracingtest.Span, step traceStep) string {
	if len(trace) == 0 {
		return "(no spans)\n"
	}
	var lines []string
	for _, s := range trace {
		parent := "server span"
		if s.ParentSpanID == "00000000000000aa" {
			parent = "caller"
		} else if s.ParentSpanID == "" {
			parent = "none"
		}
		var attrs []string
		for _, k := range tracingtest.Keys(s.Attributes) {
			v := s.Attributes[k]
			switch {
			case step.gateway && (k == "server.address" || k == "server.port"):
				// Known difference (docs/compatibility.md): etcd's gateway
				// reaches its gRPC server over loopback TCP, synod's in
				// memory ("pipe", no port).
				continue
			case k == "server.port":
				v = "<port>"
			case step.stream && k == "rpc.response.status_code":
				continue
			}
			attrs = append(attrs, k+"="+v)
		}
		if len(s.Events) > 0 {
			attrs = append(attrs, fmt.Sprintf("events=%q", s.Events))
		}
		lines = append(lines, fmt.Sprintf("%s %s scope=%s parent=%s %s\n", s.Name, strings.TrimPrefix(s.Kind, "SPAN_KIND_"), s.Scope, parent, strings.Join(attrs, " ")))
	}
	child := func(l string) bool { return strings.Contains(l, "parent=server span") }
	sort.SliceStable(lines, func(i, j int) bool { return !child(lines[i]) && child(lines[j]) })
	return strings.Join(lines, "")
}
