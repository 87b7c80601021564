package raftnode

import (
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func TestHardStateToSave(t *testing.T) {
	hs := func(term, vote, commit uint64) *raftpb.HardState {
		return &raftpb.HardState{Term: proto.Uint64(term), Vote: proto.Uint64(vote), Commit: proto.Uint64(commit)}
	}
	ent := []*raftpb.Entry{{Index: proto.Uint64(8), Term: proto.Uint64(2)}}
	cases := []struct {
		name        string
		saved, prev *raftpb.HardState
		rd          raft.Ready
		want        *raftpb.HardState
	}{
		{"nothing stored, first HardState", nil, nil, raft.Ready{HardState: hs(1, 0, 0)}, hs(1, 0, 0)},
		{"new term", hs(1, 0, 5), hs(1, 0, 5), raft.Ready{HardState: hs(2, 0, 5)}, hs(2, 0, 5)},
		{"new vote", hs(2, 0, 5), hs(2, 0, 5), raft.Ready{HardState: hs(2, 3, 5)}, hs(2, 3, 5)},
		{"commit alone", hs(2, 3, 5), hs(2, 3, 5), raft.Ready{HardState: hs(2, 3, 6)}, nil},
		{"commit with entries", hs(2, 3, 5), hs(2, 3, 5), raft.Ready{HardState: hs(2, 3, 6), Entries: ent}, hs(2, 3, 6)},
		{"unsaved commit rides on later entries", hs(2, 3, 5), hs(2, 3, 7), raft.Ready{Entries: ent}, hs(2, 3, 7)},
		{"unsaved commit, nothing else", hs(2, 3, 5), hs(2, 3, 7), raft.Ready{}, nil},
		{"up to date", hs(2, 3, 7), hs(2, 3, 7), raft.Ready{Entries: ent}, nil},
		{"nothing at all", nil, nil, raft.Ready{}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := &Core{savedHardState: c.saved, prevHardState: c.prev}
			if got := n.hardStateToSave(c.rd); !proto.Equal(got, c.want) {
				t.Errorf("hardStateToSave = %v, want %v", got, c.want)
			}
		})
	}
}
