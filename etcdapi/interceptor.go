package etcdapi

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/audit"
)

// Interceptors every RPC passes through, outermost first: logging, then
// recovery. Logging sees the codes.Internal a recovered panic turns into.

// recoverUnary turns a panic in a unary handler into codes.Internal, logged
// with its stack, so that it never reaches the client as a dropped
// connection and the server keeps serving.
func recoverUnary(lg *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if p := recover(); p != nil {
				resp, err = nil, panicked(ctx, lg, info.FullMethod, p)
			}
		}()
		return handler(ctx, req)
	}
}

// recoverStream is recoverUnary for streaming handlers.
func recoverStream(lg *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = panicked(ss.Context(), lg, info.FullMethod, p)
			}
		}()
		return handler(srv, ss)
	}
}

// panicked logs a recovered panic and returns what the client sees.
func panicked(ctx context.Context, lg *slog.Logger, method string, p any) error {
	lg.ErrorContext(ctx, "etcdapi: panic while serving a request",
		"method", method, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	return errGRPCPanic
}

// logUnary logs every unary RPC at debug level and, like etcd's request
// stats, at warn level when it took longer than slow. It logs sizes, never
// keys or values.
func logUnary(lg *slog.Logger, slow time.Duration) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		took := time.Since(start)
		if level := logLevel(took, slow); lg.Enabled(ctx, level) {
			lg.Log(ctx, level, "etcdapi: request", append(rpcAttrs(ctx, info.FullMethod, took, err),
				"request_bytes", messageSize(req), "response_bytes", messageSize(resp))...)
		}
		return resp, err
	}
}

// logStream is logUnary for streaming RPCs, logged when they end.
func logStream(lg *slog.Logger, slow time.Duration) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		err := handler(srv, ss)
		took := time.Since(start)
		if level := logLevel(took, slow); lg.Enabled(ss.Context(), level) {
			lg.Log(ss.Context(), level, "etcdapi: stream", rpcAttrs(ss.Context(), info.FullMethod, took, err)...)
		}
		return err
	}
}

// logLevel is warn for a request slower than slow, debug otherwise.
func logLevel(took, slow time.Duration) slog.Level {
	if took > slow {
		return slog.LevelWarn
	}
	return slog.LevelDebug
}

// rpcAttrs are the attributes logged for every RPC.
func rpcAttrs(ctx context.Context, method string, took time.Duration, err error) []any {
	remote := audit.PeerAddress(ctx)
	if remote == "" {
		remote = "unknown"
	}
	return []any{"method", method, "remote", remote, "took", took, "code", status.Code(err).String()}
}

// messageSize is the marshalled size of m, or -1 if m is not a message.
func messageSize(m any) int {
	if pm, ok := m.(proto.Message); ok && pm != nil {
		return proto.Size(pm)
	}
	return -1
}
