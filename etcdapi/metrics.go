package etcdapi

import (
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/synod-db/synod/metrics"
)

// counterCache holds the grpc_server_started_total and
// grpc_server_handled_total counters (those of go-grpc-prometheus, which
// etcd's dashboards read) of every method seen, so that an RPC costs no
// label hashing. The set of methods is fixed by the registered services.
type counterCache struct {
	ms      *metrics.Set
	methods sync.Map // grpc_type + full method -> *methodCounters
}

// newCounterCache returns the counters of ms, or nil (counting nothing)
// when ms is nil.
func newCounterCache(ms *metrics.Set) *counterCache {
	if ms == nil {
		return nil
	}
	return &counterCache{ms: ms}
}

// of returns the counters of method under grpc_type typ; nil if c is nil.
func (c *counterCache) of(typ, full string) *methodCounters {
	if c == nil {
		return nil
	}
	key := methodKey{typ, full}
	mc, ok := c.methods.Load(key)
	if !ok {
		mc, _ = c.methods.LoadOrStore(key, newMethodCounters(c.ms, typ, full))
	}
	return mc.(*methodCounters)
}

// methodKey is a counterCache key.
type methodKey struct{ typ, full string }

// methodCounters holds one method's counters.
type methodCounters struct {
	started prometheus.Counter
	byCode  [codes.Unauthenticated + 1]prometheus.Counter // every code gRPC defines
	vec     *prometheus.CounterVec
	labels  [3]string
}

func newMethodCounters(ms *metrics.Set, typ, full string) *methodCounters {
	svc, method := splitMethod(full)
	c := &methodCounters{started: ms.GRPCStarted.WithLabelValues(typ, svc, method), vec: ms.GRPCHandled, labels: [3]string{typ, svc, method}}
	for code := range c.byCode {
		c.byCode[code] = ms.GRPCHandled.WithLabelValues(typ, svc, method, codes.Code(code).String())
	}
	return c
}

// start counts a started RPC; a nil c counts nothing.
func (c *methodCounters) start() {
	if c != nil {
		c.started.Inc()
	}
}

// handled counts a finished RPC under the code of err; a nil c counts
// nothing.
func (c *methodCounters) handled(err error) {
	if c == nil {
		return
	}
	code := status.Code(err)
	if int(code) < len(c.byCode) {
		c.byCode[code].Inc()
		return
	}
	c.vec.WithLabelValues(c.labels[0], c.labels[1], c.labels[2], code.String()).Inc()
}

// splitMethod splits "/etcdserverpb.KV/Range" into service and method.
func splitMethod(full string) (service, method string) {
	full = strings.TrimPrefix(full, "/")
	if i := strings.LastIndexByte(full, '/'); i >= 0 {
		return full[:i], full[i+1:]
	}
	return "unknown", full
}

// streamType is go-grpc-prometheus' grpc_type label of a stream.
func streamType(info *grpc.StreamServerInfo) string {
	switch {
	case info.IsClientStream && info.IsServerStream:
		return "bidi_stream"
	case info.IsClientStream:
		return "client_stream"
	default:
		return "server_stream"
	}
}
