// Package gateway serves etcd's HTTP/JSON gateway: the v3 API as JSON over
// HTTP/1.1, under etcd's paths (/v3/kv/range, /v3/watch, /v3/lock/lock, ...).
//
// It is what etcd serves, built the way etcd builds it: grpc-gateway's
// handlers generated from etcd's own protos (etcdserverpb/gw, v3lockpb/gw,
// v3electionpb/gw), etcd's JSON marshaler options, and the websocket proxy
// etcd wraps them in. The handlers call the member's own gRPC services over
// a connection the caller dials (the member's in-memory pipe), so a gateway
// request passes the same validation, auth, limits, audit and metrics as a
// gRPC one.
//
// What it adds to etcd's gateway are bounds: a request body larger than a
// fixed multiple of the member's request limit is refused before it is read
// into memory, streaming requests (watch, lease keep-alive, snapshot,
// election observe) are capped in number, and a streaming response whose
// client stops reading is cut off after a write timeout instead of holding
// the stream open for ever (docs/gateway.md).
package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	gw "github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/tmc/grpc-websocket-proxy/wsproxy"
	etcdgw "go.etcd.io/etcd/api/v3/etcdserverpb/gw"
	electiongw "go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb/gw"
	lockgw "go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb/gw"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
)

// Prefix is the path under which the gateway is served; etcd's older
// /v3beta/ prefix is rewritten to it by Wrap.
const Prefix = "/v3/"

// Conns are the two client connections the gateway calls the member's gRPC
// services on. Streams get a connection of their own so that long-lived
// watches can never use up the per-connection stream limit that unary
// requests need.
type Conns struct {
	// Unary carries every unary call.
	Unary *grpc.ClientConn
	// Streams carries watch, lease keep-alive, snapshot and election observe.
	Streams *grpc.ClientConn
}

// New returns the gateway handler for the paths under Prefix. ctx bounds
// the registrations' lifetime (grpc-gateway closes nothing itself; the
// caller closes the connections).
func New(ctx context.Context, conns Conns, o Options) (http.Handler, error) {
	o = o.withDefaults()
	unary, err := newMux(ctx, conns.Unary)
	if err != nil {
		return nil, err
	}
	streams, err := newMux(ctx, conns.Streams)
	if err != nil {
		return nil, err
	}
	return &handler{
		unary:   wsproxied(unary, o.Logger),
		mux:     unary,
		streams: wsproxied(streams, o.Logger),
		slots:   make(chan struct{}, o.MaxStreams),
		o:       o,
	}, nil
}

// register is the signature of the generated Register*Handler functions.
type register func(context.Context, *gw.ServeMux, *grpc.ClientConn) error

// newMux is etcd's gateway mux: etcd's marshaler options and every service
// etcd registers, calling through conn.
func newMux(ctx context.Context, conn *grpc.ClientConn) (*gw.ServeMux, error) {
	mux := gw.NewServeMux(gw.WithMarshalerOption(gw.MIMEWildcard, &gw.HTTPBodyMarshaler{
		Marshaler: &gw.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: false},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: true},
		},
	}))
	for _, r := range []register{
		etcdgw.RegisterKVHandler,
		etcdgw.RegisterWatchHandler,
		etcdgw.RegisterLeaseHandler,
		etcdgw.RegisterClusterHandler,
		etcdgw.RegisterMaintenanceHandler,
		etcdgw.RegisterAuthHandler,
		lockgw.RegisterLockHandler,
		electiongw.RegisterElectionHandler,
	} {
		if err := r(ctx, mux, conn); err != nil {
			return nil, fmt.Errorf("gateway: register: %w", err)
		}
	}
	return mux, nil
}

// wsproxied wraps mux as etcd does: a websocket upgrade request is turned
// into a streaming POST, so browsers can watch.
func wsproxied(mux http.Handler, log *slog.Logger) http.Handler {
	return wsproxy.WebsocketProxy(mux,
		wsproxy.WithRequestMutator(func(_ *http.Request, out *http.Request) *http.Request {
			out.Method = http.MethodPost
			return out
		}),
		wsproxy.WithMaxRespBodyBufferSize(0x7fffffff),
		wsproxy.WithLogger(wsLogger{log}),
	)
}

// streamingPaths are the gateway paths whose responses are streams.
var streamingPaths = map[string]bool{
	"/v3/watch":                true,
	"/v3/lease/keepalive":      true,
	"/v3/maintenance/snapshot": true,
	"/v3/election/observe":     true,
}

// isStreaming reports whether path is served as a stream.
func isStreaming(path string) bool {
	return streamingPaths[strings.TrimSuffix(path, "/")]
}

// wsLogger adapts slog to wsproxy's logger.
type wsLogger struct{ l *slog.Logger }

func (w wsLogger) Warnln(v ...any)  { w.l.Warn(fmt.Sprint(v...)) }
func (w wsLogger) Debugln(v ...any) { w.l.Debug(fmt.Sprint(v...)) }
