package statemachine

import (
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/synod-db/synod/alarm"
	"github.com/synod-db/synod/auth"
	"github.com/synod-db/synod/lease"
)

// gate is what every entry but an alarm, a member's attributes and an
// empty entry passes before it is applied: the alarm gate, then, unless
// the entry changes auth (auth.Store.Apply checks its admin itself), the
// proposer's permissions. A refused entry writes nothing but its applied
// index and is answered with the error.
func (m *Machine) gate(req *pb.InternalRaftRequest) error {
	if err := m.AlarmGate(req); err != nil {
		return err
	}
	if auth.IsMutation(req) {
		return nil
	}
	return m.authorize(req)
}

// AlarmGate is etcd's alarm appliers, the one place they are written (the
// API edge asks it too, as etcdapi.Quota): while CORRUPT is raised, a
// request that would change the keys fails with alarm.ErrCorrupt; while
// NOSPACE is raised, a put, a txn with a put or a lease grant fails with
// alarm.ErrNoSpace. It depends only on replicated state, so every member
// answers alike. (A synod_unsafe_skipgate build skips the NOSPACE half.)
func (m *Machine) AlarmGate(req *pb.InternalRaftRequest) error {
	if err := alarm.Corrupt(m.alarms.Active(pb.AlarmType_CORRUPT), req); err != nil {
		return err
	}
	return alarm.Capped(m.alarms.Active(pb.AlarmType_NOSPACE) && !unsafeSkipGate, req)
}

// authorize is etcd's auth applier: a Put, DeleteRange, Txn or
// LeaseRevoke is checked against the user its proposer stamped in the
// header, at the auth revision it was checked at there (a change since is
// auth.ErrAuthOldRevision). It depends only on replicated state and the
// entry, so every member answers alike.
func (m *Machine) authorize(req *pb.InternalRaftRequest) error {
	who := auth.Info{User: req.GetHeader().GetUsername(), Revision: req.GetHeader().GetAuthRevision()}
	return m.auth.CheckRequest(who, req, m.leaseKeys)
}

// leaseKeysOf returns the function the auth checks ask for a lease's keys,
// made once per Machine rather than a closure per entry.
func leaseKeysOf(ls *lease.Lessor) auth.LeaseKeys {
	return func(id int64) ([][]byte, bool) {
		st, ok := ls.Lookup(id, true)
		return st.Keys, ok
	}
}
