package membership

import (
	"errors"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
)

func mem(id uint64, name, url string, learner bool) *pb.Member {
	return &pb.Member{ID: id, Name: name, PeerURLs: []string{url}, IsLearner: learner}
}

var (
	addNode     = raftpb.ConfChangeType_ConfChangeAddNode
	addLearner  = raftpb.ConfChangeType_ConfChangeAddLearnerNode
	removeNode  = raftpb.ConfChangeType_ConfChangeRemoveNode
	updateNode  = raftpb.ConfChangeType_ConfChangeUpdateNode
	threeVoters = []*pb.Member{mem(1, "a", "http://a:1", false), mem(2, "b", "http://b:1", false), mem(3, "c", "http://c:1", false)}
)

func TestValidate(t *testing.T) {
	withLearner := append(append([]*pb.Member(nil), threeVoters...), mem(4, "", "http://d:1", true))
	removed := func(id uint64) bool { return id == 9 }
	cases := []struct {
		name    string
		members []*pb.Member
		c       Change
		want    error
	}{
		{"add voter", threeVoters, Change{Type: addNode, ID: 5, Member: mem(5, "", "http://e:1", false)}, nil},
		{"add removed id", threeVoters, Change{Type: addNode, ID: 9, Member: mem(9, "", "http://e:1", false)}, ErrIDRemoved},
		{"add existing id", threeVoters, Change{Type: addNode, ID: 2, Member: mem(2, "", "http://e:1", false)}, ErrIDExists},
		{"add duplicate url", threeVoters, Change{Type: addNode, ID: 5, Member: mem(5, "", "http://b:1", false)}, ErrPeerURLExists},
		{"add learner", threeVoters, Change{Type: addLearner, ID: 5, Member: mem(5, "", "http://e:1", true)}, nil},
		{"second learner", withLearner, Change{Type: addLearner, ID: 5, Member: mem(5, "", "http://e:1", true)}, ErrTooManyLearners},
		{"promote learner", withLearner, Change{Type: addNode, ID: 4, Promote: true}, nil},
		{"promote voter", withLearner, Change{Type: addNode, ID: 2, Promote: true}, ErrMemberNotLearner},
		{"promote unknown", withLearner, Change{Type: addNode, ID: 7, Promote: true}, ErrIDNotFound},
		{"promote removed", withLearner, Change{Type: addNode, ID: 9, Promote: true}, ErrIDRemoved},
		{"remove voter", threeVoters, Change{Type: removeNode, ID: 3}, nil},
		{"remove unknown", threeVoters, Change{Type: removeNode, ID: 7}, ErrIDNotFound},
		{"remove removed", threeVoters, Change{Type: removeNode, ID: 9}, ErrIDRemoved},
		{"remove last voter", threeVoters[:1], Change{Type: removeNode, ID: 1}, ErrNotEnoughStarted},
		{"update own urls", threeVoters, Change{Type: updateNode, ID: 2, Member: mem(2, "", "http://b:1", false)}, nil},
		{"update to other's url", threeVoters, Change{Type: updateNode, ID: 2, Member: mem(2, "", "http://c:1", false)}, ErrPeerURLExists},
		{"update unknown", threeVoters, Change{Type: updateNode, ID: 7, Member: mem(7, "", "http://x:1", false)}, ErrIDNotFound},
	}
	for _, tc := range cases {
		err := Validate(State{Members: tc.members, IsRemoved: removed, MaxLearners: DefaultMaxLearners}, tc.c)
		if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestStrictChecks(t *testing.T) {
	now := time.Unix(1000, 0)
	long := now.Add(-time.Minute)
	up := func(ids ...uint64) Health {
		return Health{Self: 1, Now: now, ActiveSince: func(id uint64) time.Time {
			for _, u := range ids {
				if u == id {
					return long
				}
			}
			return time.Time{}
		}}
	}
	unstarted := []*pb.Member{mem(1, "a", "u1", false), mem(2, "", "u2", false), mem(3, "", "u3", false)}
	withLearner := append(append([]*pb.Member(nil), threeVoters...), mem(4, "", "u4", true))
	fresh := Health{Self: 1, Now: now, ActiveSince: func(uint64) time.Time { return now.Add(-time.Second) }}
	cases := []struct {
		name string
		got  error
		want error
	}{
		{"add voter, all up", MayAdd(threeVoters, false, up(2, 3)), nil},
		{"add voter, one down (2 of 4 would be up)", MayAdd(threeVoters, false, up(2)), ErrUnhealthy},
		{"add voter, two down", MayAdd(threeVoters, false, up()), ErrUnhealthy},
		{"add learner, two down", MayAdd(threeVoters, true, up()), ErrUnhealthy},
		{"add voter, peers just connected", MayAdd(threeVoters, false, fresh), ErrUnhealthy},
		{"add voter, two not started", MayAdd(unstarted, false, up(2, 3)), ErrNotEnoughStarted},
		{"add learner, two not started", MayAdd(unstarted, true, up(2, 3)), nil},
		{"add to a single member", MayAdd(threeVoters[:1], false, up()), nil},
		{"remove voter, all up", MayRemove(threeVoters, 3, up(2, 3)), nil},
		{"remove a down voter", MayRemove(threeVoters, 3, up(2)), nil},
		{"remove an up voter while another is down", MayRemove(threeVoters, 2, up(2)), ErrUnhealthy},
		{"remove self while another is down", MayRemove(threeVoters, 1, up(2)), ErrUnhealthy},
		{"remove learner", MayRemove(withLearner, 4, up()), nil},
		{"remove, too few started", MayRemove(unstarted, 1, up(2, 3)), ErrNotEnoughStarted},
		{"promote", MayPromote(withLearner), nil},
		{"promote, too few started", MayPromote(unstarted), ErrNotEnoughStarted},
		{"learner in sync", LearnerReady(95, 100, true), nil},
		{"learner behind", LearnerReady(50, 100, true), ErrLearnerNotReady},
		{"learner unknown to raft", LearnerReady(0, 100, false), ErrIDNotFound},
	}
	for _, tc := range cases {
		if !errors.Is(tc.got, tc.want) || (tc.want == nil && tc.got != nil) {
			t.Errorf("%s: got %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

func TestErrorFromText(t *testing.T) {
	for _, e := range known {
		if got := ErrorFromText(e.Error()); got != e {
			t.Errorf("%v: round trip gave %v", e, got)
		}
	}
	if ErrorFromText("something else") != nil {
		t.Error("unknown text mapped to a sentinel")
	}
}
