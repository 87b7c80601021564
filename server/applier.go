package server

import (
	"fmt"

	"github.com/cockroachdb/pebble"
	"go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/synod-db/synod/auth"
	"github.com/synod-db/synod/mvcc"
	"github.com/synod-db/synod/raftnode"
)

// applier is the member's state machine as the raft loop sees it: the mvcc
// store for key-value requests, the lessor for leases (server/lease.go) and
// the membership for everything about members, the auth store for users
// and roles (server/auth.go). Only the raft loop calls it.
type applier struct {
	m *Member
}

var _ raftnode.Applier = applier{}

func (a applier) Applied() (uint64, uint64) { return a.m.store.Applied() }

func (a applier) Apply(index, term uint64, req *etcdserverpb.InternalRaftRequest) (raftnode.Result, error) {
	if r := req.GetClusterMemberAttrSet(); r != nil {
		err := a.m.store.ApplyOther(index, term, func(b *pebble.Batch) error { return a.m.members.setAttributes(b, r) })
		return raftnode.Result{}, err
	}
	if r := req.GetAlarm(); r != nil {
		return a.m.applyAlarm(index, term, r)
	}
	if err := a.m.capped(req); err != nil {
		return raftnode.Result{Err: err}, a.m.store.ApplyOther(index, term, nil)
	}
	if auth.IsMutation(req) {
		return a.m.applyAuth(index, term, req)
	}
	if err := a.m.authorizeApply(req); err != nil {
		return raftnode.Result{Err: err}, a.m.store.ApplyOther(index, term, nil)
	}
	if res, ok, err := a.applyLease(index, term, req); ok {
		return res, err
	}
	if req.Put == nil && req.DeleteRange == nil && req.Txn == nil && req.Compaction == nil {
		// A request type this version does not implement: record it as
		// applied and answer deterministically, on every member alike.
		err := a.m.store.ApplyOther(index, term, nil)
		return raftnode.Result{Err: fmt.Errorf("%w: unsupported request", errUnsupported)}, err
	}
	res, err := a.m.store.Apply(index, term, req)
	if err != nil {
		return raftnode.Result{}, err
	}
	a.m.lessor.ApplyEvents(res.Events)
	a.m.notifyWatchers(res.Events)
	return raftnode.Result{Resp: res.Resp, Err: res.Err, Done: res.Compacted}, nil
}

func (a applier) ApplyNoop(index, term uint64) error { return a.m.store.ApplyOther(index, term, nil) }

func (a applier) NewSnapshot() raftnode.Snapshot { return a.m.store.NewSnapshot() }

func (a applier) VerifySnapshot(path string) error { return mvcc.VerifySnapshotFile(path) }

func (a applier) Restore(path string) error {
	if err := a.m.store.Restore(path); err != nil {
		return err
	}
	if err := a.m.members.reload(a.m.db); err != nil {
		return err
	}
	if err := a.m.alarms.Reload(a.m.db); err != nil {
		return err
	}
	if err := a.m.auth.Reload(a.m.db); err != nil {
		return err
	}
	if err := a.m.loadLeases(); err != nil {
		return err
	}
	a.m.syncPeers()
	a.m.hub.Resync()
	return nil
}
