package server

import (
	"fmt"

	"github.com/cockroachdb/pebble"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

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

func (a applier) applyOne(index, term uint64, req *etcdserverpb.InternalRaftRequest) (raftnode.Result, error) {
	if req == nil {
		return raftnode.Result{}, a.m.store.ApplyOther(index, term, nil)
	}
	if r := req.GetClusterMemberAttrSet(); r != nil {
		err := a.m.store.ApplyOther(index, term, func(b *pebble.Batch) error { return a.m.members.setAttributes(b, r) })
		return raftnode.Result{}, err
	}
	if r := req.GetAlarm(); r != nil {
		return a.m.applyAlarm(index, term, r)
	}
	if err := a.m.alarmGate(req); err != nil {
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

// Apply applies every run of two or more plain key-value requests
// (groupable) with one mvcc.Group, so one batch commit, and every other
// request with applyOne.
func (a applier) Apply(reqs []raftnode.Request, res []raftnode.Result) error {
	for i := 0; i < len(reqs); {
		j := i
		for j < len(reqs) && reqs[j].Req != nil && groupable(reqs[j].Req) {
			j++
		}
		if j-i > 1 {
			if err := a.applyGroup(reqs[i:j], res[i:j]); err != nil {
				return err
			}
			i = j
			continue
		}
		r, err := a.applyOne(reqs[i].Index, reqs[i].Term, reqs[i].Req)
		if err != nil {
			return err
		}
		res[i] = r
		i++
	}
	return nil
}

// groupable reports whether req is a Put, DeleteRange or Txn and nothing
// else: a request that changes only the key-value store and, through its
// events, lease attachments and watchers, and whose gates (the NOSPACE
// alarm, permissions) only change with requests that are not groupable.
func groupable(req *etcdserverpb.InternalRaftRequest) bool {
	kv := 0
	for _, set := range []bool{req.Put != nil, req.DeleteRange != nil, req.Txn != nil} {
		if set {
			kv++
		}
	}
	return kv == 1 && req.Compaction == nil && req.ClusterMemberAttrSet == nil && req.Alarm == nil &&
		req.LeaseGrant == nil && req.LeaseRevoke == nil && req.LeaseCheckpoint == nil && !auth.IsMutation(req)
}

// applyGroup applies groupable requests in one mvcc.Group: the same gates
// and results as Apply for each, one commit for all, and the events go to
// the lessor and the watchers once the group is committed. If the group
// breaks (mvcc.ErrGroupBroken), nothing of it was committed and the
// requests are applied again one by one.
func (a applier) applyGroup(reqs []raftnode.Request, res []raftnode.Result) error {
	g, err := a.m.store.NewGroup()
	if err != nil {
		return err
	}
	defer g.Close()
	events := make([][]*mvccpb.Event, len(reqs))
	for i, r := range reqs {
		if err := a.gate(r.Req); err != nil {
			res[i] = raftnode.Result{Err: err}
			g.Skip(r.Index, r.Term)
			continue
		}
		mr, err := g.Apply(r.Index, r.Term, r.Req)
		if err != nil {
			return err
		}
		res[i], events[i] = raftnode.Result{Resp: mr.Resp, Err: mr.Err}, mr.Events
	}
	if err := g.Commit(); err != nil {
		return err
	}
	for _, evs := range events {
		a.m.lessor.ApplyEvents(evs)
		a.m.notifyWatchers(evs)
	}
	return nil
}

// gate is what Apply checks of a key-value request before the store: the
// CORRUPT and NOSPACE alarms and the caller's permissions.
func (a applier) gate(req *etcdserverpb.InternalRaftRequest) error {
	if err := a.m.alarmGate(req); err != nil {
		return err
	}
	return a.m.authorizeApply(req)
}

// applyEach applies reqs one by one with Apply.
func (a applier) applyEach(reqs []raftnode.Request, res []raftnode.Result) error {
	for i, r := range reqs {
		var err error
		if res[i], err = a.applyOne(r.Index, r.Term, r.Req); err != nil {
			return err
		}
	}
	return nil
}

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
