// Package tracing exports spans of the client gRPC API to an OpenTelemetry
// collector, configured by etcd's --enable-distributed-tracing flags and
// built as etcd 3.7.3 builds it: an OTLP/gRPC exporter (plaintext) behind a
// batch span processor, a resource naming the service and its instance, a
// parent-based sampler that samples root spans at a rate per million, W3C
// trace-context and baggage propagation, and otelgrpc's server stats
// handler on the gRPC server.
//
// The batch processor queues spans in a bounded buffer and exports them from
// its own goroutine, dropping what does not fit: a slow or unreachable
// collector never holds a request up.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"google.golang.org/grpc"
)

// Defaults of etcd's tracing flags.
const (
	// DefaultAddress is --distributed-tracing-address's default: a
	// collector's OTLP/gRPC port on this host.
	DefaultAddress = "localhost:4317"
	// DefaultServiceName is --distributed-tracing-service-name's default.
	DefaultServiceName = "etcd"
	// MaxSamplingRate is the highest --distributed-tracing-sampling-rate:
	// every root span sampled.
	MaxSamplingRate = 1000000
)

// ShutdownTimeout bounds how long Shutdown waits for the last spans to
// reach the collector.
const ShutdownTimeout = 3 * time.Second

// ErrInvalidConfig is wrapped by Validate's errors.
var ErrInvalidConfig = errors.New("distributed tracing configurition is not valid") // etcd's spelling

// Config is the tracing part of a member's configuration.
type Config struct {
	// Enabled is --enable-distributed-tracing.
	Enabled bool
	// Address is --distributed-tracing-address: the collector's OTLP/gRPC
	// endpoint (host:port, plaintext, as etcd).
	Address string
	// ServiceName is --distributed-tracing-service-name, the resource's
	// service.name (the same on every member).
	ServiceName string
	// InstanceID is --distributed-tracing-instance-id, the resource's
	// service.instance.id (unique per member); empty leaves it out.
	InstanceID string
	// SamplingRate is --distributed-tracing-sampling-rate: root spans
	// sampled per million; spans with a parent follow the parent's choice.
	SamplingRate int
}

// Validate checks the sampling rate as etcd does, with etcd's messages; a
// disabled configuration is not checked.
func (c Config) Validate() error {
	if !c.Enabled {
		return nil
	}
	switch {
	case c.SamplingRate < 0:
		return fmt.Errorf("%w: (tracing sampling rate must be positive)", ErrInvalidConfig)
	case c.SamplingRate > MaxSamplingRate:
		return fmt.Errorf("%w: (tracing sampling rate must be less than %d)", ErrInvalidConfig, MaxSamplingRate)
	}
	return nil
}

// Sampler is the sampler for a rate per million: root spans are sampled at
// that ratio (never at 0), child spans as their parent was.
func Sampler(ratePerMillion int) sdktrace.Sampler {
	root := sdktrace.NeverSample()
	if ratePerMillion > 0 {
		root = sdktrace.TraceIDRatioBased(float64(ratePerMillion) / MaxSamplingRate)
	}
	return sdktrace.ParentBased(root)
}

// Provider is a running span pipeline. Create it with New; Shutdown
// flushes it.
type Provider struct {
	tp   *sdktrace.TracerProvider
	exp  sdktrace.SpanExporter
	prop propagation.TextMapPropagator
	opts []otelgrpc.Option
}

// New builds the pipeline for c. It connects to nothing yet: the exporter
// dials the collector when it first exports, and keeps retrying a
// collector that is down.
func New(ctx context.Context, c Config) (*Provider, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithInsecure(), otlptracegrpc.WithEndpoint(c.Address))
	if err != nil {
		return nil, fmt.Errorf("tracing: exporter for %q: %w", c.Address, err)
	}
	res, err := newResource(ctx, c)
	if err != nil {
		_ = exp.Shutdown(ctx)
		return nil, err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res),
		sdktrace.WithSampler(Sampler(c.SamplingRate)))
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	return &Provider{tp: tp, exp: exp, prop: prop, opts: []otelgrpc.Option{otelgrpc.WithPropagators(prop), otelgrpc.WithTracerProvider(tp)}}, nil
}

// newResource is the resource every span carries: service.name and, when
// set, service.instance.id, and nothing detected from the host or the
// environment (as etcd).
func newResource(ctx context.Context, c Config) (*resource.Resource, error) {
	res, err := resource.New(ctx, resource.WithAttributes(semconv.ServiceNameKey.String(c.ServiceName)))
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	if c.InstanceID == "" {
		return res, nil
	}
	res, err = resource.Merge(res, resource.NewSchemaless(semconv.ServiceInstanceIDKey.String(c.InstanceID)))
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	return res, nil
}

// ServerOptions instrument a gRPC server: every RPC it serves is a server
// span named for its method (etcdserverpb.KV/Range, ...), continuing the
// trace of a caller that sent a traceparent, and what etcd's server traces
// inside an RPC gets etcd's child span (put, range, txn, ..., watch,
// lease_renew). The interceptors are appended to the server's chains, so
// they run innermost.
func (p *Provider) ServerOptions() []grpc.ServerOption {
	tr := p.tp.Tracer(EtcdScope)
	return []grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler(p.opts...)),
		grpc.ChainUnaryInterceptor(etcdSpans(tr)), grpc.ChainStreamInterceptor(etcdStreamSpans(tr))}
}

// Shutdown exports the spans still queued and stops the exporter, giving
// up after ShutdownTimeout (or ctx's end): what is left then is dropped,
// and an export still waiting for the collector is cut off.
func (p *Provider) Shutdown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, ShutdownTimeout)
	defer cancel()
	err := p.tp.Shutdown(ctx)
	cut, stop := context.WithCancel(context.Background())
	stop()
	_ = p.exp.Shutdown(cut) // already stopped unless the flush gave up
	if err != nil {
		return fmt.Errorf("tracing: flush: %w", err)
	}
	return nil
}
