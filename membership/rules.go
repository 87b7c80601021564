package membership

import (
	"fmt"
	"slices"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
)

// DefaultMaxLearners is etcd's default --max-learners.
const DefaultMaxLearners = 1

// HealthInterval is how long a peer must have been connected to count as
// active in the strict reconfiguration checks (etcd's HealthInterval).
const HealthInterval = 5 * time.Second

// ReadyPercent is the share of the leader's log a learner must have before
// it may be promoted (etcd's readyPercentThreshold).
const ReadyPercent = 0.9

// Change is a membership change as it appears in a raft ConfChange: a
// promotion is an AddNode for an existing learner and carries no member.
type Change struct {
	Type    raftpb.ConfChangeType
	ID      uint64
	Member  *etcdserverpb.Member // new or updated member (ID, PeerURLs, IsLearner); nil for promote and remove
	Promote bool
}

// State is what validation reads: the current members and whether an ID was
// removed.
type State struct {
	Members     []*etcdserverpb.Member
	IsRemoved   func(id uint64) bool
	MaxLearners int
}

func (s State) find(id uint64) *etcdserverpb.Member {
	for _, m := range s.Members {
		if m.GetID() == id {
			return m
		}
	}
	return nil
}

// Validate checks a change against the state, exactly as every member does
// when the change is applied (etcd's ValidateConfigurationChange), plus one
// rule etcd leaves to raft's panic: the last voting member is never removed.
func Validate(s State, c Change) error {
	if s.IsRemoved != nil && s.IsRemoved(c.ID) {
		return ErrIDRemoved
	}
	cur := s.find(c.ID)
	switch c.Type {
	case raftpb.ConfChangeType_ConfChangeAddNode, raftpb.ConfChangeType_ConfChangeAddLearnerNode:
		if c.Promote {
			if cur == nil {
				return ErrIDNotFound
			}
			if !cur.GetIsLearner() {
				return ErrMemberNotLearner
			}
			return nil
		}
		if cur != nil {
			return ErrIDExists
		}
		if err := urlsFree(s, c.ID, c.Member.GetPeerURLs()); err != nil {
			return err
		}
		if c.Type == raftpb.ConfChangeType_ConfChangeAddLearnerNode && learners(s.Members)+1 > s.MaxLearners {
			return ErrTooManyLearners
		}
	case raftpb.ConfChangeType_ConfChangeRemoveNode:
		if cur == nil {
			return ErrIDNotFound
		}
		if !cur.GetIsLearner() && len(Voters(s.Members)) == 1 {
			return ErrNotEnoughStarted
		}
	case raftpb.ConfChangeType_ConfChangeUpdateNode:
		if cur == nil {
			return ErrIDNotFound
		}
		return urlsFree(s, c.ID, c.Member.GetPeerURLs())
	default:
		return fmt.Errorf("membership: unknown conf change type %v", c.Type)
	}
	return nil
}

// urlsFree fails if a member other than id has one of urls.
func urlsFree(s State, id uint64, urls []string) error {
	for _, m := range s.Members {
		if m.GetID() == id {
			continue
		}
		for _, u := range urls {
			if slices.Contains(m.GetPeerURLs(), u) {
				return ErrPeerURLExists
			}
		}
	}
	return nil
}

func learners(ms []*etcdserverpb.Member) int {
	n := 0
	for _, m := range ms {
		if m.GetIsLearner() {
			n++
		}
	}
	return n
}

// Voters returns the voting members of ms.
func Voters(ms []*etcdserverpb.Member) []*etcdserverpb.Member {
	var out []*etcdserverpb.Member
	for _, m := range ms {
		if !m.GetIsLearner() {
			out = append(out, m)
		}
	}
	return out
}

// started: a member that has published its name (etcd's IsStarted).
func started(m *etcdserverpb.Member) bool { return m.GetName() != "" }
