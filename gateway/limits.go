package gateway

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
	gw "github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/synod-db/synod/etcdapi"
)

// Defaults of Options.
const (
	// DefaultStreamWriteTimeout is how long one write of a streaming
	// response may block on a client that does not read.
	DefaultStreamWriteTimeout = 30 * time.Second
	// maxStreamBodyBytes bounds everything a client sends on one streaming
	// request (watch create, cancel and progress requests).
	maxStreamBodyBytes = 64 << 20
)

// Options bound the gateway.
type Options struct {
	// MaxRequestBytes is the member's --max-request-bytes (0: etcd's
	// default). The gRPC server takes messages up to
	// etcdapi.MaxRecvMsgBytes of it (etcd's allowance on top); a
	// unary request body over 4× that (base64 makes bytes a third larger,
	// and JSON adds field names) is refused unread. Anything smaller is
	// decoded and judged by the gRPC server, with its own errors, exactly
	// as etcd's gateway does.
	MaxRequestBytes int
	// MaxStreams bounds concurrent streaming requests; more are refused
	// with 429 and code 8 (ResourceExhausted). Default: the gRPC
	// server's per-connection bound, etcdapi.DefaultMaxConcurrentStreams.
	MaxStreams int
	// StreamWriteTimeout bounds one write of a streaming response; a
	// client that reads nothing for that long is disconnected. Default
	// DefaultStreamWriteTimeout.
	StreamWriteTimeout time.Duration
	// Logger receives the websocket proxy's messages; nil discards them.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.MaxRequestBytes <= 0 {
		o.MaxRequestBytes = etcdapi.DefaultMaxRequestBytes
	}
	if o.MaxStreams <= 0 {
		o.MaxStreams = etcdapi.DefaultMaxConcurrentStreams
	}
	if o.StreamWriteTimeout <= 0 {
		o.StreamWriteTimeout = DefaultStreamWriteTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// maxBodyBytes is the largest unary request body read.
func (o Options) maxBodyBytes() int64 {
	return 4*int64(etcdapi.MaxRecvMsgBytes(o.MaxRequestBytes)) + 64<<10
}

// handler applies the bounds, then hands the request to the mux for its
// kind: unary or streaming.
type handler struct {
	unary, streams http.Handler
	mux            *gw.ServeMux  // answers the handler's own refusals, in etcd's shape
	slots          chan struct{} // one per streaming request in progress
	o              Options
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !isStreaming(r.URL.Path) {
		r.Body = http.MaxBytesReader(w, r.Body, h.o.maxBodyBytes())
		h.unary.ServeHTTP(w, r)
		return
	}
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	default:
		h.writeError(w, r, status.Errorf(codes.ResourceExhausted,
			"etcdserver: too many streaming requests (gateway limit %d)", cap(h.slots)))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxStreamBodyBytes)
	if websocket.IsWebSocketUpgrade(r) {
		h.streams.ServeHTTP(w, r) // wsproxy hijacks the connection
		return
	}
	h.streams.ServeHTTP(&deadlineWriter{ResponseWriter: w, rc: http.NewResponseController(w), d: h.o.StreamWriteTimeout}, r)
}

// writeError answers err the way grpc-gateway answers a failed call: its
// status code mapping and its {"code","message","details"} body.
func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	_, m := gw.MarshalerForRequest(h.mux, r)
	gw.DefaultHTTPErrorHandler(r.Context(), h.mux, m, w, r, err)
}

// deadlineWriter sets a write deadline on the connection before every
// write and flush of a streaming response, so a client that stops reading
// is disconnected after d instead of holding the stream (and, through
// flow control, the member's watch) for ever. A stream that is idle sets
// no deadline: only a blocked write can time out.
type deadlineWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
}

func (w *deadlineWriter) arm() { _ = w.rc.SetWriteDeadline(time.Now().Add(w.d)) }

// Write writes p under a fresh deadline.
func (w *deadlineWriter) Write(p []byte) (int, error) {
	w.arm()
	return w.ResponseWriter.Write(p)
}

// Flush sends what is buffered under a fresh deadline.
func (w *deadlineWriter) Flush() {
	w.arm()
	_ = w.rc.Flush()
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
