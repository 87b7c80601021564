package membership

import (
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
)

// Health is what the strict reconfiguration checks know about the peers:
// this member's ID, when each peer's link came up (zero while down) and the
// time now.
type Health struct {
	Self        uint64
	ActiveSince func(id uint64) time.Time
	Now         time.Time
}

// connected counts the members of ms this member has been connected to for
// at least HealthInterval, itself included (etcd's numConnectedSince).
func (h Health) connected(ms []*etcdserverpb.Member) int {
	since := h.Now.Add(-HealthInterval)
	n := 0
	for _, m := range ms {
		if m.GetID() == h.Self {
			n++
			continue
		}
		if t := h.ActiveSince(m.GetID()); !t.IsZero() && t.Before(since) {
			n++
		}
	}
	return n
}

func quorum(n int) int { return n/2 + 1 }

// MayAdd is etcd's strict check before adding a member: for a voter, the
// started voters must still be a quorum of the larger cluster; for any
// member, this member must be connected to a quorum of the larger cluster,
// counting the new member as down.
func MayAdd(ms []*etcdserverpb.Member, learner bool, h Health) error {
	voters := Voters(ms)
	if !learner && !readyToAddVoter(voters) {
		return ErrNotEnoughStarted
	}
	if len(voters) > 1 && h.connected(voters) < quorum(len(voters)+1) {
		return ErrUnhealthy
	}
	return nil
}

func readyToAddVoter(voters []*etcdserverpb.Member) bool {
	nstarted := 0
	for _, m := range voters {
		if started(m) {
			nstarted++
		}
	}
	nmembers := len(voters) + 1
	// Adding a second member to a one-member cluster (restoring from a
	// backup) is allowed, as in etcd.
	return (nstarted == 1 && nmembers == 2) || nstarted >= quorum(nmembers)
}

// MayRemove is etcd's strict check before removing member id: removing a
// learner is always fine; removing a voter only if the started voters that
// remain are a quorum of the smaller cluster and, unless the removed member
// is down anyway, this member stays connected to a quorum.
func MayRemove(ms []*etcdserverpb.Member, id uint64, h Health) error {
	var target *etcdserverpb.Member
	for _, m := range ms {
		if m.GetID() == id {
			target = m
		}
	}
	if target != nil && target.GetIsLearner() {
		return nil
	}
	voters := Voters(ms)
	nmembers, nstarted := 0, 0
	for _, m := range voters {
		if m.GetID() == id {
			continue
		}
		nmembers++
		if started(m) {
			nstarted++
		}
	}
	if nstarted < quorum(nmembers) {
		return ErrNotEnoughStarted
	}
	if id != h.Self && h.ActiveSince(id).IsZero() {
		return nil // a member that is down is no part of the active quorum
	}
	if h.connected(voters)-1 < quorum(len(voters)-1) {
		return ErrUnhealthy
	}
	return nil
}

// MayPromote is etcd's strict check before promoting learner id: counting
// the learner as a started voter, the started voters must be a quorum.
func MayPromote(ms []*etcdserverpb.Member) error {
	voters := Voters(ms)
	nmembers, nstarted := len(voters)+1, 1
	for _, m := range voters {
		if started(m) {
			nstarted++
		}
	}
	if nstarted < quorum(nmembers) {
		return ErrNotEnoughStarted
	}
	return nil
}

// LearnerReady is etcd's readiness check before a promotion, on the leader:
// the learner's matched log index must be at least ReadyPercent of the
// leader's. found says whether raft tracks the learner at all.
func LearnerReady(learnerMatch, leaderMatch uint64, found bool) error {
	if !found {
		return ErrIDNotFound
	}
	if leaderMatch == 0 {
		return nil
	}
	if float64(learnerMatch)/float64(leaderMatch) < ReadyPercent {
		return ErrLearnerNotReady
	}
	return nil
}
