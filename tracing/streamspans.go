package tracing

import (
	"sync"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
)

// maxOpenStreamSpans bounds the spans one stream holds open (watchers not
// yet created or canceled, renewals not yet answered); requests beyond it
// get no span.
const maxOpenStreamSpans = 10000

// etcdStreamSpans starts, inside the server span of a Watch,
// LeaseKeepAlive or RangeStream stream, the spans etcd's server starts for
// what the stream carries: a "watch" span per watcher, from its create
// request until it is canceled or the stream ends; a "lease_renew" span per
// keep-alive until it is answered; one "range_streaming" span for the range.
func etcdStreamSpans(tr trace.Tracer) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		switch info.FullMethod {
		case "/etcdserverpb.Watch/Watch", "/etcdserverpb.Lease/LeaseKeepAlive", "/etcdserverpb.KV/RangeStream":
		default:
			return handler(srv, ss)
		}
		w := &spanStream{ServerStream: ss, tr: tr, watches: map[int64]trace.Span{}}
		defer w.endAll()
		return handler(srv, w)
	}
}

// spanStream watches a stream's messages to start and end etcd's spans.
type spanStream struct {
	grpc.ServerStream
	tr trace.Tracer

	mu       sync.Mutex
	pending  []trace.Span         // watchers created, renewals asked: answered in order
	watches  map[int64]trace.Span // live watchers by ID
	whole    trace.Span           // range_streaming
	finished bool
}

// RecvMsg starts a span for a watch create request, a keep-alive and a
// streamed range.
func (s *spanStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	name, attrs := streamSpan(m)
	if name == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished || len(s.pending)+len(s.watches) >= maxOpenStreamSpans {
		return nil
	}
	_, span := s.tr.Start(s.ServerStream.Context(), name, trace.WithAttributes(attrs...))
	if name == "range_streaming" {
		s.whole = span
	} else {
		s.pending = append(s.pending, span)
	}
	return nil
}

// SendMsg ends a keep-alive's span at its answer, and moves a watcher's
// span from pending to live at its creation, ending it at its cancelation.
// A watch refused at creation drops its span unexported, as etcd starts
// none for it.
func (s *spanStream) SendMsg(m any) error {
	s.mu.Lock()
	switch r := m.(type) {
	case *etcdserverpb.LeaseKeepAliveResponse:
		if span := s.popPending(); span != nil {
			span.End()
		}
	case *etcdserverpb.WatchResponse:
		s.watchAnswered(r)
	}
	s.mu.Unlock()
	return s.ServerStream.SendMsg(m)
}

func (s *spanStream) watchAnswered(r *etcdserverpb.WatchResponse) {
	if r.GetCreated() {
		if span := s.popPending(); span != nil && !r.GetCanceled() {
			s.watches[r.GetWatchId()] = span
		}
		return
	}
	if span, ok := s.watches[r.GetWatchId()]; ok && r.GetCanceled() {
		span.End()
		delete(s.watches, r.GetWatchId())
	}
}

func (s *spanStream) popPending() trace.Span {
	if len(s.pending) == 0 {
		return nil
	}
	span := s.pending[0]
	s.pending = s.pending[1:]
	return span
}

// endAll ends the spans still open when the stream ends (its watchers are
// canceled with it); renewals never answered drop their spans.
func (s *spanStream) endAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finished = true
	for _, span := range s.watches {
		span.End()
	}
	if s.whole != nil {
		s.whole.End()
	}
	s.watches, s.pending = nil, nil
}

// streamSpan names the span etcd starts for a message received on a
// stream, with its attributes; "" for none.
func streamSpan(m any) (string, []attribute.KeyValue) {
	switch r := m.(type) {
	case *etcdserverpb.WatchRequest:
		c := r.GetCreateRequest()
		if c == nil {
			return "", nil
		}
		end := c.GetRangeEnd()
		if len(end) == 1 && end[0] == 0 {
			end = nil // etcd's "from key": an empty end
		}
		return "watch", []attribute.KeyValue{attribute.String("key", string(c.GetKey())),
			attribute.String("range_end", string(end)), attribute.Int64("start_rev", c.GetStartRevision()),
			attribute.Bool("progress_notify", c.GetProgressNotify()), attribute.Bool("prev_kv", c.GetPrevKv()),
			attribute.Bool("fragment", c.GetFragment())}
	case *etcdserverpb.LeaseKeepAliveRequest:
		return "lease_renew", []attribute.KeyValue{attribute.Int64("id", r.GetID())}
	case *etcdserverpb.RangeRequest:
		return "range_streaming", []attribute.KeyValue{attribute.String("range_begin", string(r.GetKey())),
			attribute.String("range_end", string(r.GetRangeEnd())), attribute.Int64("rev", r.GetRevision()),
			attribute.Int64("limit", r.GetLimit()), attribute.Bool("count_only", r.GetCountOnly())}
	}
	return "", nil
}
