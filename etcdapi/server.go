package etcdapi

import (
	"context"
	"io"
	"log/slog"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/mvcc"
)

// Server is what the API edge needs from a member. Methods are safe for concurrent use.
type Server interface {
	// Propose replicates req through raft (it assigns req.Header.ID) and returns the response produced by applying it on this member: *PutResponse, *DeleteRangeResponse, *TxnResponse or *CompactionResponse with Header.Revision set. Errors: raftnode.ErrNoLeader / ErrTimeout / ErrStopped / ErrTooManyRequests, ctx errors, or the request-level mvcc errors (ErrCompacted, ErrFutureRev, ErrKeyNotFound, ErrLeaseNotFound). For a physical compaction it returns only once the deletion finished.
	Propose(ctx context.Context, req *etcdserverpb.InternalRaftRequest) (proto.Message, error)
	// ReadIndex returns once this member has applied everything that was committed when it was called (a linearizable read barrier, batched across callers). Errors: raftnode.ErrNoLeader, ErrTimeout, ErrLeaderChanged, ErrStopped, ctx errors.
	ReadIndex(ctx context.Context) error
	// Store is the member's mvcc store for local reads (Range, ReadTxn).
	Store() *mvcc.Store
	// Header returns a new header with ClusterId, MemberId and RaftTerm set; Revision is 0 for the caller to fill.
	Header() *etcdserverpb.ResponseHeader
	// Members lists the cluster's members (ID, Name, PeerURLs, ClientURLs, IsLearner). linearizable=true first does ReadIndex.
	Members(ctx context.Context, linearizable bool) ([]*etcdserverpb.Member, error)
	// Status fills what `etcdctl endpoint status` shows: Version, DbSize, DbSizeInUse, Leader, RaftIndex, RaftTerm, RaftAppliedIndex, Errors, IsLearner, StorageVersion, DbSizeQuota.
	Status(ctx context.Context) (*etcdserverpb.StatusResponse, error)
	// Limits of this member (from --max-txn-ops, --max-request-bytes).
	Limits() Limits
	// Maintainer serves the Maintenance service and the storage quota.
	Maintainer
}

// Maintainer is the part of a member the Maintenance service needs, and the
// quota check of writes. Methods are safe for concurrent use.
type Maintainer interface {
	// CheckQuota returns alarm.ErrNoSpace (after raising the NOSPACE alarm
	// through raft) if a write of cost bytes (alarm.CostPut, CostTxn,
	// LeaseOverhead) would take the database over its quota; cost 0 always passes.
	CheckQuota(ctx context.Context, cost int) error
	// AlarmGate is the apply-time alarm gate as the alarms stand now:
	// alarm.ErrCorrupt or alarm.ErrNoSpace if applying req would fail
	// on them. The edge answers it before a permission error, since
	// etcd's alarm appliers wrap its auth applier.
	AlarmGate(req *etcdserverpb.InternalRaftRequest) error
	// Alarm replicates an alarm request through raft and returns its response.
	Alarm(ctx context.Context, r *etcdserverpb.AlarmRequest) (*etcdserverpb.AlarmResponse, error)
	// Snapshot returns a snapshot stream (mvcc.Snapshot.WriteTo) of the
	// state keyspace and its size; the caller must close it.
	Snapshot(ctx context.Context) (io.ReadCloser, int64, error)
	// MoveLeader hands leadership to target. Errors: raftnode.ErrNotLeader,
	// ErrBadTransferee, ErrTransferTimeout, ErrStopped.
	MoveLeader(ctx context.Context, target uint64) error
	// Defragment reclaims disk space.
	Defragment(ctx context.Context) error
}

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

// reader is the part of *mvcc.Store the API edge reads through. Keeping it an
// interface lets tests interpose on the store (to write between the chunks of
// a RangeStream, for example).
type reader interface {
	// Range reads keys; only Header.Revision of the response header is set.
	Range(ctx context.Context, r *etcdserverpb.RangeRequest) (*etcdserverpb.RangeResponse, error)
	// ReadTxn evaluates a txn whose ops are all ranges.
	ReadTxn(ctx context.Context, r *etcdserverpb.TxnRequest) (*etcdserverpb.TxnResponse, error)
	// Rev is the store's current revision.
	Rev() int64
	// HashKV hashes the keyspace up to rev (0 = current revision).
	HashKV(rev int64) (hash uint32, hashRev int64, compactRev int64, err error)
}

// edge is the state every service shares: the member, how to reach its
// store, and where to log.
type edge struct {
	srv   Server
	au    AuthServer // nil: the member has no auth (always off)
	store func() reader
	lg    *slog.Logger
}

// newEdge returns the shared state for services of member s.
func newEdge(s Server, lg *slog.Logger) *edge {
	au, _ := s.(AuthServer)
	return &edge{srv: s, au: au, store: func() reader { return s.Store() }, lg: lg}
}

// limits returns the member's limits with etcd's defaults applied.
func (e *edge) limits() Limits {
	return e.srv.Limits().withDefaults()
}

// readBarrier waits for a linearizable read index unless the read is
// serializable, in which case the local state is good enough.
func (e *edge) readBarrier(ctx context.Context, serializable bool) error {
	if serializable || e.unsafeSkipReadIndex(ctx) {
		return nil
	}
	return e.srv.ReadIndex(ctx)
}

// fillHeader sets the member's ClusterId, MemberId and RaftTerm on h (which
// may be nil) and, like etcd's header.fill, the store's current revision if
// h carries none.
func (e *edge) fillHeader(h *etcdserverpb.ResponseHeader) *etcdserverpb.ResponseHeader {
	h = e.fillIdentity(h)
	if h.Revision == 0 {
		h.Revision = e.store().Rev()
	}
	return h
}

// fillIdentity sets ClusterId, MemberId and RaftTerm on h (allocating it if
// nil) and leaves Revision alone.
func (e *edge) fillIdentity(h *etcdserverpb.ResponseHeader) *etcdserverpb.ResponseHeader {
	if h == nil {
		h = &etcdserverpb.ResponseHeader{}
	}
	id := e.srv.Header()
	h.ClusterId, h.MemberId, h.RaftTerm = id.GetClusterId(), id.GetMemberId(), id.GetRaftTerm()
	return h
}
