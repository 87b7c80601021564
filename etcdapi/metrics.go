package etcdapi

import (
	"context"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/synod-db/synod/metrics"
)

// metricsUnary counts unary RPCs in grpc_server_started_total and
// grpc_server_handled_total, the counters of go-grpc-prometheus that etcd's
// dashboards read.
func metricsUnary(ms *metrics.Set) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		svc, method := splitMethod(info.FullMethod)
		ms.GRPCStarted.WithLabelValues("unary", svc, method).Inc()
		resp, err := handler(ctx, req)
		ms.GRPCHandled.WithLabelValues("unary", svc, method, status.Code(err).String()).Inc()
		return resp, err
	}
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
