package etcdapi

import (
	"context"
	"log/slog"

	"go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/synod-db/synod/auth"
)

// Limits bound the requests a member accepts. A zero field means etcd's
// default (DefaultMaxTxnOps, DefaultMaxRequestBytes).
type Limits struct {
	// MaxTxnOps bounds the compares, and separately the success and failure
	// ops, of one txn (etcd's --max-txn-ops).
	MaxTxnOps int
	// MaxRequestBytes bounds a write once wrapped in an InternalRaftRequest
	// (etcd's --max-request-bytes). It is also the target size of a
	// RangeStream chunk.
	MaxRequestBytes int
}

// etcd's defaults for Limits (server/embed/config.go).
const (
	// DefaultMaxTxnOps is etcd's default --max-txn-ops.
	DefaultMaxTxnOps = 128
	// DefaultMaxRequestBytes is etcd's default --max-request-bytes (1.5 MiB).
	DefaultMaxRequestBytes = 3 * 512 * 1024
)

// withDefaults returns l with every zero or negative field set to etcd's default.
func (l Limits) withDefaults() Limits {
	if l.MaxTxnOps <= 0 {
		l.MaxTxnOps = DefaultMaxTxnOps
	}
	if l.MaxRequestBytes <= 0 {
		l.MaxRequestBytes = DefaultMaxRequestBytes
	}
	return l
}

// edge is the state every service shares: the member's backends and
// where to log.
type edge struct {
	b  Backends
	lg *slog.Logger
	// keysOfLease is leaseKeys' function, made once rather than a closure
	// per request.
	keysOfLease auth.LeaseKeys
}

// newEdge returns the shared state for services over b.
func newEdge(b Backends, lg *slog.Logger) *edge {
	ls := b.Leases
	return &edge{b: b, lg: lg, keysOfLease: func(id int64) ([][]byte, bool) {
		st, ok := ls.Lookup(id, true)
		return st.Keys, ok
	}}
}

// limits returns the member's limits with etcd's defaults applied.
func (e *edge) limits() Limits {
	return e.b.Member.Limits().withDefaults()
}

// readBarrier waits for a linearizable read index unless the read is
// serializable, in which case the local state is good enough.
func (e *edge) readBarrier(ctx context.Context, serializable bool) error {
	if serializable || e.unsafeSkipReadIndex(ctx) {
		return nil
	}
	return e.b.Raft.ReadIndex(ctx)
}

// fillHeader sets the member's ClusterId, MemberId and RaftTerm on h (which
// may be nil) and, like etcd's header.fill, the store's current revision if
// h carries none.
func (e *edge) fillHeader(h *etcdserverpb.ResponseHeader) *etcdserverpb.ResponseHeader {
	h = e.fillIdentity(h)
	if h.Revision == 0 {
		h.Revision = e.b.KV.Rev()
	}
	return h
}

// fillIdentity sets ClusterId, MemberId and RaftTerm on h (allocating it if
// nil) and leaves Revision alone.
func (e *edge) fillIdentity(h *etcdserverpb.ResponseHeader) *etcdserverpb.ResponseHeader {
	if h == nil {
		h = &etcdserverpb.ResponseHeader{}
	}
	id := e.b.Member.Header()
	h.ClusterId, h.MemberId, h.RaftTerm = id.GetClusterId(), id.GetMemberId(), id.GetRaftTerm()
	return h
}
