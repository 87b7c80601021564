package etcdapi

import (
	"context"
	"sync"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/synod-db/synod/audit"
)

// The audit log is the outermost observer after the caller's identity
// (observers), so that it sees every answer a client gets.

// auditEntry is the entry for one finished RPC.
func auditEntry(l *audit.Log, ctx context.Context, method string, req, resp any, err error) audit.Entry {
	e := audit.Entry{Time: l.Now().UTC(), User: l.Identity(ctx), Peer: audit.PeerAddress(ctx)}
	audit.Describe(&e, method, req, resp)
	s, _ := status.FromError(err)
	e.Code, e.Message = s.Code().String(), s.Message()
	return e
}

// auditedStream remembers a stream's first request and last response with
// a header, and audits refused watches as they are sent.
type auditedStream struct {
	grpc.ServerStream
	l      *audit.Log
	method string

	mu       sync.Mutex
	first    any // first request received
	last     any // last response sent that has a header
	watchReq any // latest watch create request, for a refused watch
}

func (s *auditedStream) seen() (first, last any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.first, s.last
}

// RecvMsg records the first request and the latest watch creation.
func (s *auditedStream) RecvMsg(m any) error {
	err := s.ServerStream.RecvMsg(m)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.first == nil {
		s.first = m
	}
	if wr, ok := m.(*pb.WatchRequest); ok && wr.GetCreateRequest() != nil {
		s.watchReq = wr.GetCreateRequest()
	}
	s.mu.Unlock()
	return nil
}

// SendMsg records the last header and audits a watch refused for want of
// permission (etcd answers it on the stream, not as an RPC error).
func (s *auditedStream) SendMsg(m any) error {
	if h, ok := m.(interface{ GetHeader() *pb.ResponseHeader }); ok && h.GetHeader() != nil {
		s.mu.Lock()
		s.last = m
		s.mu.Unlock()
	}
	if wr, ok := m.(*pb.WatchResponse); ok && wr.GetCanceled() {
		if refusal, ok := audit.WatchRefusal(wr.GetCancelReason()); ok {
			s.mu.Lock()
			req := s.watchReq
			s.mu.Unlock()
			s.l.Record(auditEntry(s.l, s.Context(), s.method, req, m, refusal))
		}
	}
	return s.ServerStream.SendMsg(m)
}
