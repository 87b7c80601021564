package tracing

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

func TestValidate(t *testing.T) {
	for rate, want := range map[int]string{
		-1:      "distributed tracing configurition is not valid: (tracing sampling rate must be positive)",
		1000001: "distributed tracing configurition is not valid: (tracing sampling rate must be less than 1000000)",
		0:       "", 1000000: "",
	} {
		err := Config{Enabled: true, SamplingRate: rate}.Validate()
		if (err == nil) != (want == "") || (err != nil && (err.Error() != want || !errors.Is(err, ErrInvalidConfig))) {
			t.Errorf("rate %d: %v, want %q", rate, err, want)
		}
		if _, err := New(context.Background(), Config{Enabled: true, Address: "127.0.0.1:1", SamplingRate: rate}); (err == nil) != (want == "") {
			t.Errorf("New with rate %d: %v", rate, err)
		}
	}
	if err := (Config{SamplingRate: -1}).Validate(); err != nil {
		t.Errorf("a disabled configuration is checked: %v", err)
	}
}

// The sampler follows a remote parent's decision; a root is sampled at the
// rate.
func TestSampler(t *testing.T) {
	parent := func(sampled bool) context.Context {
		flags := trace.TraceFlags(0)
		if sampled {
			flags = trace.FlagsSampled
		}
		sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: flags, Remote: true})
		return trace.ContextWithRemoteSpanContext(context.Background(), sc)
	}
	sampled := func(rate int, ctx context.Context, id trace.TraceID) bool {
		p := sdktrace.SamplingParameters{ParentContext: ctx, TraceID: id, Name: "x"}
		return Sampler(rate).ShouldSample(p).Decision == sdktrace.RecordAndSample
	}
	for _, rate := range []int{0, 1, 500000, MaxSamplingRate} {
		if !sampled(rate, parent(true), trace.TraceID{1}) || sampled(rate, parent(false), trace.TraceID{1}) {
			t.Errorf("rate %d does not follow the parent", rate)
		}
	}
	n := 0
	for i := 0; i < 10000; i++ {
		var id trace.TraceID
		binary.BigEndian.PutUint64(id[8:], uint64(i+1)*0x9e3779b97f4a7c15) // the ratio sampler reads these bytes
		if sampled(0, context.Background(), id) {
			t.Fatal("rate 0 sampled a root span")
		}
		if !sampled(MaxSamplingRate, context.Background(), id) {
			t.Fatal("rate 1000000 did not sample a root span")
		}
		if sampled(250000, context.Background(), id) {
			n++
		}
	}
	if n < 2000 || n > 3000 {
		t.Errorf("rate 250000 sampled %d of 10000 roots", n)
	}
}

func TestEtcdSpanAttributes(t *testing.T) {
	put := func(k string, lease int64) *etcdserverpb.RequestOp {
		return &etcdserverpb.RequestOp{Request: &etcdserverpb.RequestOp_RequestPut{RequestPut: &etcdserverpb.PutRequest{Key: []byte(k), Lease: lease}}}
	}
	get := func(k string) *etcdserverpb.RequestOp {
		return &etcdserverpb.RequestOp{Request: &etcdserverpb.RequestOp_RequestRange{RequestRange: &etcdserverpb.RangeRequest{Key: []byte(k)}}}
	}
	nested := &etcdserverpb.RequestOp{Request: &etcdserverpb.RequestOp_RequestTxn{RequestTxn: &etcdserverpb.TxnRequest{}}}
	for _, c := range []struct {
		req  any
		want string
	}{
		{&etcdserverpb.PutRequest{Key: []byte("k")}, "put key=k"},
		{&etcdserverpb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("b"), Revision: 3, Limit: 2, CountOnly: true},
			"range range_begin=a range_end=b rev=3 limit=2 count_only=true keys_only=false"},
		{&etcdserverpb.TxnRequest{Compare: []*etcdserverpb.Compare{{}, {Key: []byte("c")}}, Success: []*etcdserverpb.RequestOp{nested, get(""), put("p", 5)}},
			"txn compare_first_key=c success_first_key=p success_first_type=txn success_first_lease=5 compare_len=2 success_len=3 failure_len=0 read_only=false"},
		{&etcdserverpb.TxnRequest{Success: []*etcdserverpb.RequestOp{get("g")}, Failure: []*etcdserverpb.RequestOp{get("h")}},
			"txn compare_first_key= success_first_key=g success_first_type=range success_first_lease=-1 compare_len=0 success_len=1 failure_len=1 read_only=true"},
		{&etcdserverpb.TxnRequest{Failure: []*etcdserverpb.RequestOp{put("x", 0)}},
			"txn compare_first_key= success_first_key= success_first_type= success_first_lease=-1 compare_len=0 success_len=0 failure_len=1 read_only=false"},
		{&etcdserverpb.LeaseGrantRequest{ID: 7, TTL: 60}, "lease_grant id=7 ttl=60"},
		{&etcdserverpb.LeaseRevokeRequest{ID: 7}, "lease_revoke id=7"},
		{&etcdserverpb.CompactionRequest{Revision: 9, Physical: true}, "compact is_physical=true rev=9"},
		{&etcdserverpb.DeleteRangeRequest{Key: []byte("d")}, "delete_range range_begin=d range_end="},
		{&etcdserverpb.StatusRequest{}, ""},
	} {
		name, attrs := etcdSpan(c.req)
		if got := render(name, attrs); got != c.want {
			t.Errorf("%T:\n got %s\nwant %s", c.req, got, c.want)
		}
	}
}

func render(name string, attrs []attribute.KeyValue) string {
	parts := []string{name}
	for _, a := range attrs {
		parts = append(parts, string(a.Key)+"="+a.Value.Emit())
	}
	return strings.Join(parts, " ")
}
