package statemachine

import (
	"errors"

	"github.com/cockroachdb/pebble/v2"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/synod-db/synod/auth"
	"github.com/synod-db/synod/mvcc"
	"github.com/synod-db/synod/raftnode"
)

// ErrUnsupported answers a request of a type this version does not apply:
// it is recorded as applied and answered alike on every member.
var ErrUnsupported = errors.New("statemachine: request type not supported")

// Apply applies a run of committed normal entries through one mvcc.Group:
// one batch commit for the run (see the package doc), each entry seeing
// the entries before it. The events of the run go to the watchers once it
// is committed, revision by revision. A returned error is fatal.
func (m *Machine) Apply(reqs []raftnode.Request, res []raftnode.Result) error {
	g, err := m.kv.NewGroup()
	if err != nil {
		return err
	}
	defer g.Close()
	var revs [][]*mvccpb.Event
	for i, r := range reqs {
		var evs []*mvccpb.Event
		if res[i], evs, err = m.applyEntry(g, r); err != nil {
			return err
		}
		if len(evs) > 0 {
			revs = append(revs, evs)
		}
	}
	if err := g.Commit(); err != nil {
		return err
	}
	m.notify(revs)
	return nil
}

// applyEntry applies one entry into g and returns its result and the
// events of its revision, if it made one. The lessor hears of the events
// at once, so a later entry of the run (a revocation) sees the keys it
// attached.
func (m *Machine) applyEntry(g *mvcc.Group, r raftnode.Request) (raftnode.Result, []*mvccpb.Event, error) {
	req := r.Req
	switch {
	case req == nil:
		g.Skip(r.Index, r.Term)
		return raftnode.Result{}, nil, nil
	case req.ClusterMemberAttrSet != nil:
		return raftnode.Result{}, nil, g.ApplyOther(r.Index, r.Term, func(b *pebble.Batch) error {
			return m.members.SetAttributes(b, req.ClusterMemberAttrSet)
		})
	case req.Alarm != nil:
		res, err := m.applyAlarm(g, r.Index, r.Term, req.Alarm)
		return res, nil, err
	}
	if err := m.gate(req); err != nil {
		g.Skip(r.Index, r.Term)
		return raftnode.Result{Err: err}, nil, nil
	}
	if auth.IsMutation(req) {
		res, err := m.applyAuth(g, r.Index, r.Term, req)
		return res, nil, err
	}
	if res, evs, ok, err := m.applyLease(g, r.Index, r.Term, req); ok {
		return res, evs, err
	}
	if !isKV(req) {
		g.Skip(r.Index, r.Term)
		return raftnode.Result{Err: ErrUnsupported}, nil, nil
	}
	mr, err := g.Apply(r.Index, r.Term, req)
	if err != nil {
		return raftnode.Result{}, nil, err
	}
	m.lessor.ApplyEvents(mr.Events)
	return raftnode.Result{Resp: mr.Resp, Err: mr.Err, Done: mr.Compacted}, mr.Events, nil
}

// isKV reports whether req is a request of the keyspace's own.
func isKV(req *pb.InternalRaftRequest) bool {
	return req.Put != nil || req.DeleteRange != nil || req.Txn != nil || req.Compaction != nil
}

// notify hands the committed run's events to the watchers, one revision
// at a time, in order.
func (m *Machine) notify(revs [][]*mvccpb.Event) {
	if m.watchers == nil {
		return
	}
	if unsafeWatchOrder && len(revs) > 1 {
		n := len(revs)
		revs[n-2], revs[n-1] = revs[n-1], revs[n-2]
	}
	for _, evs := range revs {
		m.watchers.Notify(evs[0].Kv.ModRevision, evs)
	}
}
