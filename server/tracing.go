package server

import (
	"context"
	"log/slog"

	"google.golang.org/grpc"

	"github.com/synod-db/synod/tracing"
)

// newTracer starts the span pipeline of --enable-distributed-tracing; nil
// when tracing is off. It dials nothing: a collector that is down costs
// dropped spans, never a refused start or a slow request.
func newTracer(c tracing.Config, log *slog.Logger) (*tracing.Provider, error) {
	if !c.Enabled {
		return nil, nil
	}
	p, err := tracing.New(context.Background(), c)
	if err != nil {
		return nil, err
	}
	log.Info("distributed tracing enabled", "address", c.Address, "service-name", c.ServiceName,
		"service-instance-id", c.InstanceID, "sampling-rate", c.SamplingRate)
	return p, nil
}

// tracingOptions are the client gRPC server's options for tracing: a span
// for every RPC, the gateway's included (it calls the same server).
func (m *Member) tracingOptions() []grpc.ServerOption {
	if m.tracer == nil {
		return nil
	}
	return m.tracer.ServerOptions()
}

// stopTracing flushes the spans still queued, within tracing.ShutdownTimeout.
func (m *Member) stopTracing() {
	if m.tracer == nil {
		return
	}
	if err := m.tracer.Shutdown(context.Background()); err != nil {
		m.log.Warn("distributed tracing: spans not flushed", "err", err)
	}
}

// tracingDialOptions are the member's client of itself's options for
// tracing: the Lock and Election recipes' calls join their RPC's trace.
func (m *Member) tracingDialOptions() []grpc.DialOption {
	if m.tracer == nil {
		return nil
	}
	return m.tracer.DialOptions()
}
