package etcdapi

import (
	"context"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/synod-db/synod/metrics"
)

// metricsUnary counts unary RPCs in grpc_server_started_total and
// grpc_server_handled_total, the counters of go-grpc-prometheus that etcd's
// dashboards read.
func metricsUnary(ms *metrics.Set) grpc.UnaryServerInterceptor {
	var methods sync.Map // full method -> *methodCounters
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		mc, ok := methods.Load(info.FullMethod)
		if !ok {
			mc, _ = methods.LoadOrStore(info.FullMethod, newMethodCounters(ms, "unary", info.FullMethod))
		}
		c := mc.(*methodCounters)
		c.started.Inc()
		resp, err := handler(ctx, req)
		c.handled(status.Code(err)).Inc()
		return resp, err
	}
}

// methodCounters holds one unary method's counters, so a request costs no
// label hashing. The set of methods is fixed by the registered services.
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

// handled is the grpc_server_handled_total counter of code.
func (c *methodCounters) handled(code codes.Code) prometheus.Counter {
	if int(code) < len(c.byCode) {
		return c.byCode[code]
	}
	return c.vec.WithLabelValues(c.labels[0], c.labels[1], c.labels[2], code.String())
}

// metricsStream is metricsUnary for streaming RPCs.
func metricsStream(ms *metrics.Set) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		svc, method := splitMethod(info.FullMethod)
		typ := streamType(info)
		ms.GRPCStarted.WithLabelValues(typ, svc, method).Inc()
		err := handler(srv, ss)
		ms.GRPCHandled.WithLabelValues(typ, svc, method, status.Code(err).String()).Inc()
		return err
	}
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
