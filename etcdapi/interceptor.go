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

// observers is what every RPC passes through, outermost first: the caller's
// identity (so every later step can ask UserFromContext), the audit log,
// the go-grpc-prometheus counters, the request log, and panic recovery
// (so the log and the counters see the codes.Internal a recovered panic
// turns into). They are one interceptor rather than a chain of five:
// gRPC's chain allocates a closure per layer per RPC and calls through
// each, which the profiles of issue 18 showed on every put.
type observers struct {
	e        *edge
	lg       *slog.Logger
	slow     time.Duration
	audit    *audit.Log    // nil: no audit log
	counters *counterCache // nil: no metrics
}

// unary is the observers of a unary RPC.
func (o *observers) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx = o.e.withCaller(ctx)
	c := o.counters.of("unary", info.FullMethod)
	c.start()
	start := time.Now()
	resp, err := o.recoverUnary(ctx, req, info, handler)
	took := time.Since(start)
	if level := logLevel(took, o.slow); o.lg.Enabled(ctx, level) {
		o.lg.Log(ctx, level, "etcdapi: request", append(rpcAttrs(ctx, info.FullMethod, took, err),
			"request_bytes", messageSize(req), "response_bytes", messageSize(resp))...)
	}
	c.handled(err)
	if o.audit != nil && audit.Audited(info.FullMethod, req, err) {
		o.audit.Record(auditEntry(o.audit, ctx, info.FullMethod, req, resp, err))
	}
	return resp, err
}

// stream is the observers of a streaming RPC; it logs, counts and audits
// the stream when it ends.
func (o *observers) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	cs := &callerStream{ServerStream: ss, ctx: o.e.withCaller(ss.Context())}
	var inner grpc.ServerStream = cs
	var as *auditedStream
	if o.audit != nil {
		as = &auditedStream{ServerStream: cs, l: o.audit, method: info.FullMethod}
		inner = as
	}
	c := o.counters.of(streamType(info), info.FullMethod)
	c.start()
	start := time.Now()
	err := o.recoverStream(srv, inner, info, handler)
	took := time.Since(start)
	if level := logLevel(took, o.slow); o.lg.Enabled(cs.ctx, level) {
		o.lg.Log(cs.ctx, level, "etcdapi: stream", rpcAttrs(cs.ctx, info.FullMethod, took, err)...)
	}
	c.handled(err)
	if as != nil {
		if first, last := as.seen(); audit.Audited(info.FullMethod, first, err) {
			o.audit.Record(auditEntry(o.audit, cs.ctx, info.FullMethod, first, last, err))
		}
	}
	return err
}

// recoverUnary runs a unary handler, turning a panic in it into
// codes.Internal, logged with its stack, so that it never reaches the
// client as a dropped connection and the server keeps serving.
func (o *observers) recoverUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if p := recover(); p != nil {
			resp, err = nil, panicked(ctx, o.lg, info.FullMethod, p)
		}
	}()
	return handler(ctx, req)
}

// recoverStream is recoverUnary for streaming handlers.
func (o *observers) recoverStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = panicked(ss.Context(), o.lg, info.FullMethod, p)
		}
	}()
	return handler(srv, ss)
}

// panicked logs a recovered panic and returns what the client sees.
func panicked(ctx context.Context, lg *slog.Logger, method string, p any) error {
	lg.ErrorContext(ctx, "etcdapi: panic while serving a request",
		"method", method, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	return errGRPCPanic
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
