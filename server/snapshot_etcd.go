package server

import (
	"context"
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/server/v3/lease/leasepb"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/synod-db/synod/alarm"
	"github.com/synod-db/synod/auth"
	"github.com/synod-db/synod/etcdsnap"
	"github.com/synod-db/synod/lease"
	"github.com/synod-db/synod/membership"
	"github.com/synod-db/synod/mvcc"
)

// writeEtcdSnapshot writes the replicated state in sn, in etcd's snapshot
// format (package etcdsnap), into a new database at path: the history as
// etcd's key bucket holds it after its compaction, the leases (ID and
// granted TTL), the auth state, the alarms, the membership and the applied
// index and term. synod-only state is left out: lease renewal indexes, the
// auth token signing key, rejected conf-change indexes, compaction hashes.
// It stops when ctx ends.
func writeEtcdSnapshot(ctx context.Context, path string, sn *mvcc.Snapshot) (err error) {
	w, err := etcdsnap.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			w.Abort()
		}
	}()
	_, compactRev, err := sn.EtcdRecords(func(k, v []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return w.PutRevision(k, v)
	})
	if err != nil {
		return err
	}
	if err := writeEtcdOthers(w, sn); err != nil {
		return err
	}
	cs, err := writeEtcdMembers(w, sn)
	if err != nil {
		return err
	}
	m := etcdsnap.Meta{ConsistentIndex: sn.Index(), Term: sn.Term(), ScheduledCompact: compactRev, FinishedCompact: compactRev}
	if err := w.PutMeta(m, cs); err != nil {
		return err
	}
	return w.Close()
}

// writeEtcdOthers writes the leases, the auth state and the alarms.
func writeEtcdOthers(w *etcdsnap.Writer, sn *mvcc.Snapshot) error {
	leases, err := lease.ReadRecords(sn)
	if err != nil {
		return err
	}
	for _, l := range leases {
		if err := w.PutLease(&leasepb.Lease{ID: l.ID, TTL: l.TTL}); err != nil {
			return err
		}
	}
	st, err := auth.ReadState(sn)
	if err != nil {
		return err
	}
	if err := w.PutAuth(etcdsnap.Auth{Enabled: st.Enabled, Revision: st.Revision, Users: st.Users, Roles: st.Roles}); err != nil {
		return err
	}
	alarms, err := alarm.Load(sn)
	if err != nil {
		return err
	}
	for _, a := range alarms.List(pb.AlarmType_NONE) {
		if err := w.PutAlarm(a); err != nil {
			return err
		}
	}
	return nil
}

// writeEtcdMembers writes the membership and returns its raft
// configuration.
func writeEtcdMembers(w *etcdsnap.Writer, sn *mvcc.Snapshot) (*raftpb.ConfState, error) {
	ms, err := membership.Load(sn)
	if err != nil {
		return nil, fmt.Errorf("server: snapshot: %w", err)
	}
	cs := &raftpb.ConfState{}
	for _, m := range ms.List() {
		if m.IsLearner {
			cs.Learners = append(cs.Learners, m.ID)
		} else {
			cs.Voters = append(cs.Voters, m.ID)
		}
		em := etcdsnap.Member{ID: m.ID, PeerURLs: m.PeerURLs, IsLearner: m.IsLearner, Name: m.Name, ClientURLs: m.ClientURLs}
		if err := w.PutMember(em); err != nil {
			return nil, err
		}
	}
	for _, id := range ms.Removed() {
		if err := w.PutRemovedMember(id); err != nil {
			return nil, err
		}
	}
	return cs, nil
}
