package etcdapi

import (
	"log/slog"
	"math"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	"github.com/synod-db/synod/audit"
	"github.com/synod-db/synod/metrics"
)

// Defaults of Options.
const (
	// DefaultMaxConcurrentStreams bounds the concurrent streams (RPCs) of one
	// client connection. etcd's default is unbounded; synod's is not.
	DefaultMaxConcurrentStreams = 1000
	// DefaultKeepaliveMinTime is etcd's --grpc-keepalive-min-time.
	DefaultKeepaliveMinTime = 5 * time.Second
	// DefaultKeepaliveInterval is etcd's --grpc-keepalive-interval.
	DefaultKeepaliveInterval = 2 * time.Hour
	// DefaultKeepaliveTimeout is etcd's --grpc-keepalive-timeout.
	DefaultKeepaliveTimeout = 20 * time.Second
	// DefaultSlowRequest is etcd's --warning-unary-request-duration.
	DefaultSlowRequest = 300 * time.Millisecond
	// DefaultNoLeaderGrace is three of etcd's default election timeouts.
	DefaultNoLeaderGrace = 3 * time.Second

	// grpcOverheadBytes is what etcd allows a gRPC message on top of
	// --max-request-bytes (config.grpcOverheadBytes), so that a request just
	// over the limit reaches the edge and gets etcd's "request is too
	// large" instead of a transport error.
	grpcOverheadBytes = 512 * 1024
)

// MaxRecvMsgBytes is the largest gRPC message the server accepts for a
// member whose --max-request-bytes is maxRequestBytes: etcd's allowance on
// top of it. The HTTP gateway sizes its body limit from it.
func MaxRecvMsgBytes(maxRequestBytes int) int { return maxRequestBytes + grpcOverheadBytes }

// Options configure NewGRPCServer. The zero value is etcd's defaults except
// where noted.
type Options struct {
	// MaxRequestBytes is the request limit the gRPC receive limit is derived
	// from (MaxRequestBytes + 512 KiB, as in etcd). 0 means the member's
	// Limits().MaxRequestBytes.
	MaxRequestBytes int
	// MaxConcurrentStreams bounds the concurrent RPCs of one connection.
	// 0 means DefaultMaxConcurrentStreams.
	MaxConcurrentStreams uint32
	// KeepaliveMinTime is the least interval a client may ping at; faster
	// clients are disconnected. 0 means DefaultKeepaliveMinTime.
	KeepaliveMinTime time.Duration
	// KeepaliveInterval is how long a connection may be idle before the
	// server pings it. 0 means DefaultKeepaliveInterval.
	KeepaliveInterval time.Duration
	// KeepaliveTimeout is how long the server waits for that ping's answer
	// before closing the connection. 0 means DefaultKeepaliveTimeout.
	KeepaliveTimeout time.Duration
	// SlowRequest is the duration above which a request is logged at warn
	// level. 0 means DefaultSlowRequest.
	SlowRequest time.Duration
	// Logger receives request logs (debug), slow requests (warn) and
	// recovered panics (error). nil discards them.
	Logger *slog.Logger
	// Health is the gRPC health service to register, so that its owner can
	// flip it to NOT_SERVING on shutdown. nil means a new one. Either way its
	// overall ("") status is set to SERVING.
	Health *health.Server
	// NoLeaderGrace is how long a watch or lease keep-alive stream opened
	// with clientv3.WithRequireLeader survives while the member has no leader
	// before it ends with "etcdserver: no leader" (etcd: three election
	// timeouts). 0 means DefaultNoLeaderGrace.
	NoLeaderGrace time.Duration
	// Metrics, if set, counts every RPC in grpc_server_started_total and
	// grpc_server_handled_total.
	Metrics *metrics.Set
	// Self is a client of this member for the Lock and Election services,
	// which, as in etcd, run the clientv3/concurrency recipes against the
	// member itself. nil leaves those two services answering
	// codes.Unimplemented.
	Self *clientv3.Client
	// Audit, if set, receives an entry for every mutating request and every
	// authentication or authorization decision (package audit). Its
	// interceptors are the outermost.
	Audit *audit.Log
	// ServerOptions are appended last (credentials for TLS, for example) and
	// so override the options above.
	ServerOptions []grpc.ServerOption
}

// withDefaults returns o with its zero fields set, taking the request limit
// from the member's limits.
func (o Options) withDefaults(l Limits) Options {
	if o.MaxRequestBytes <= 0 {
		o.MaxRequestBytes = l.withDefaults().MaxRequestBytes
	}
	if o.MaxConcurrentStreams == 0 {
		o.MaxConcurrentStreams = DefaultMaxConcurrentStreams
	}
	o.KeepaliveMinTime = orDefault(o.KeepaliveMinTime, DefaultKeepaliveMinTime)
	o.KeepaliveInterval = orDefault(o.KeepaliveInterval, DefaultKeepaliveInterval)
	o.KeepaliveTimeout = orDefault(o.KeepaliveTimeout, DefaultKeepaliveTimeout)
	o.SlowRequest = orDefault(o.SlowRequest, DefaultSlowRequest)
	o.NoLeaderGrace = orDefault(o.NoLeaderGrace, DefaultNoLeaderGrace)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Health == nil {
		o.Health = health.NewServer()
	}
	return o
}

// orDefault returns d if v is not positive, else v.
func orDefault(v, d time.Duration) time.Duration {
	if v <= 0 {
		return d
	}
	return v
}

// streamWorkers is how many long-lived goroutines serve incoming RPCs. A
// worker keeps the stack it has grown, where a goroutine per RPC starts
// small and grows (copies) its stack on every request: without workers,
// stack growth was a quarter of a serializable Range's CPU. When every
// worker is busy (requests blocked on raft), gRPC falls back to a new
// goroutine per RPC.
const streamWorkers = 128

// serverOptions are the grpc.ServerOptions o stands for.
func (o Options) serverOptions(e *edge) []grpc.ServerOption {
	obs := &observers{e: e, lg: o.Logger, slow: o.SlowRequest, audit: o.Audit, counters: newCounterCache(o.Metrics)}
	opts := []grpc.ServerOption{
		grpc.UnaryInterceptor(obs.unary),
		grpc.StreamInterceptor(obs.stream),
		grpc.MaxRecvMsgSize(MaxRecvMsgBytes(o.MaxRequestBytes)),
		grpc.MaxSendMsgSize(math.MaxInt32),
		grpc.MaxConcurrentStreams(o.MaxConcurrentStreams),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: o.KeepaliveMinTime}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: o.KeepaliveInterval, Timeout: o.KeepaliveTimeout}),
		grpc.NumStreamWorkers(streamWorkers),
		// Fixed flow-control windows turn off gRPC's bandwidth-delay
		// estimator, which sends a PING (and reads its ack) for nearly
		// every request at low concurrency: about 30% of the CPU of a
		// single client's linearizable reads. The windows bound what one
		// connection may have buffered unread.
		grpc.InitialWindowSize(clientStreamWindow),
		grpc.InitialConnWindowSize(clientConnWindow),
	}
	return append(opts, o.ServerOptions...)
}

// Client-facing HTTP/2 flow-control windows (see serverOptions): a stream's
// window exceeds the largest request (--max-request-bytes, 1.5 MiB by
// default), so a put needs no window update mid-message.
const (
	clientStreamWindow = 2 << 20
	clientConnWindow   = 4 << 20
)

// NewGRPCServer returns a gRPC server over the member's backends b with
// etcd's KV, Maintenance, Cluster, Watch, Lease and Auth services (every
// service checks permissions while auth is enabled), the Lock and Election
// services (given opts.Self), the gRPC health service, and the services
// synod does not serve, which answer codes.Unimplemented. The first
// interceptor of every RPC puts the caller's identity in its context
// (UserFromContext). The caller serves it on its listeners and stops it.
// A nil field of b is a wiring bug: NewGRPCServer panics, naming it.
func NewGRPCServer(b Backends, opts Options) *grpc.Server {
	b.mustBeComplete()
	opts = opts.withDefaults(b.Member.Limits())
	e := newEdge(b, opts.Logger)
	gs := grpc.NewServer(opts.serverOptions(e)...)
	pb.RegisterKVServer(gs, &kvService{e: e})
	pb.RegisterMaintenanceServer(gs, &maintenanceService{e: e})
	pb.RegisterClusterServer(gs, &clusterService{e: e})
	pb.RegisterWatchServer(gs, &watchService{e: e, grace: opts.NoLeaderGrace})
	pb.RegisterLeaseServer(gs, &leaseService{e: e, grace: opts.NoLeaderGrace})
	pb.RegisterAuthServer(gs, &authService{e: e})
	opts.Health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, opts.Health)
	if opts.Self != nil {
		v3lockpb.RegisterLockServer(gs, &lockService{c: opts.Self, e: e})
		v3electionpb.RegisterElectionServer(gs, &electionService{c: opts.Self, e: e})
	} else {
		registerUnimplemented(gs, "Lock", "Election")
	}
	return gs
}
