package server

import (
	"context"
	"fmt"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	oteltrace "go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/etcdapi"
	"github.com/synod-db/synod/mvcc"
)

// Version is the etcd API version synod implements and reports in Status,
// so that clients that gate features on the server version behave as they
// would against etcd.
const Version = "3.7.3"

// StorageVersion is reported as etcd's storage version field.
const StorageVersion = "3.7.0"

// Propose replicates req through raft and returns the response applying it
// produced on this member (see etcdapi.Raft).
func (m *Member) Propose(ctx context.Context, req *etcdserverpb.InternalRaftRequest) (proto.Message, error) {
	span := oteltrace.SpanFromContext(ctx) // the request's span, if traced: etcd's two events
	span.AddEvent("Send raft proposal")
	res, err := m.node.Propose(ctx, req)
	if err != nil {
		return nil, err
	}
	span.AddEvent("Receive raft result")
	if res.Err != nil {
		return nil, res.Err
	}
	if res.Done != nil && req.GetCompaction().GetPhysical() {
		select {
		case <-res.Done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return res.Resp, nil
}

// ReadIndex is a linearizable read barrier (see etcdapi.Raft).
func (m *Member) ReadIndex(ctx context.Context) error { return m.node.ReadIndex(ctx) }

// Store is the member's mvcc store.
func (m *Member) Store() *mvcc.Store { return m.sm.KV() }

// Header returns a response header with this member's identity and term.
func (m *Member) Header() *etcdserverpb.ResponseHeader {
	return &etcdserverpb.ResponseHeader{ClusterId: m.clusterID, MemberId: m.id, RaftTerm: m.node.Term()}
}

// Limits reports --max-txn-ops and --max-request-bytes.
func (m *Member) Limits() etcdapi.Limits {
	return etcdapi.Limits{MaxTxnOps: m.cfg.MaxTxnOps, MaxRequestBytes: m.cfg.MaxRequestBytes}
}

// Members lists the cluster's members.
func (m *Member) Members(ctx context.Context, linearizable bool) ([]*etcdserverpb.Member, error) {
	if linearizable {
		if err := m.node.ReadIndex(ctx); err != nil {
			return nil, err
		}
	}
	return m.sm.Members().List(), nil
}

// Status reports what `etcdctl endpoint status` shows. DbSize and
// DbSizeInUse are the sampled Pebble disk usage and its live part (what
// compactions will not reclaim); Errors lists, as etcd, a missing leader and
// every raised alarm.
func (m *Member) Status(ctx context.Context) (*etcdserverpb.StatusResponse, error) {
	resp := &etcdserverpb.StatusResponse{
		Version:          Version,
		StorageVersion:   StorageVersion,
		DbSize:           m.dbSize.Load(),
		DbSizeInUse:      m.dbInUse.Load(),
		DbSizeQuota:      m.quota(),
		Leader:           m.node.Leader(),
		RaftIndex:        m.node.CommitIndex(),
		RaftTerm:         m.node.Term(),
		RaftAppliedIndex: m.node.AppliedIndex(),
	}
	if mem, ok := m.sm.Members().Get(m.id); ok {
		resp.IsLearner = mem.IsLearner
	}
	if resp.Leader == 0 {
		resp.Errors = append(resp.Errors, "etcdserver: no leader") // etcd's wording
	}
	for _, a := range m.sm.Alarms().List(etcdserverpb.AlarmType_NONE) {
		resp.Errors = append(resp.Errors, a.String())
	}
	if err := m.node.Err(); err != nil {
		resp.Errors = append(resp.Errors, fmt.Sprintf("raft loop stopped: %v", err))
	}
	return resp, nil
}
