package statemachine

import (
	"testing"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func TestDecodeChange(t *testing.T) {
	ctx, _ := proto.Marshal(&etcdserverpb.Member{ID: 9, PeerURLs: []string{"http://a:1"}})
	add := raftpb.ConfChangeType_ConfChangeAddNode
	learner := raftpb.ConfChangeType_ConfChangeAddLearnerNode
	cases := []struct {
		cc      *raftpb.ConfChange
		promote bool
		learner bool
		err     bool
	}{
		{&raftpb.ConfChange{Type: add.Enum(), NodeId: proto.Uint64(5), Context: ctx}, false, false, false},
		{&raftpb.ConfChange{Type: learner.Enum(), NodeId: proto.Uint64(5), Context: ctx}, false, true, false},
		{&raftpb.ConfChange{Type: add.Enum(), NodeId: proto.Uint64(5)}, true, false, false},
		{&raftpb.ConfChange{Type: add.Enum(), NodeId: proto.Uint64(5), Context: []byte{0xff}}, false, false, true},
	}
	for i, tc := range cases {
		c, err := decodeChange(tc.cc)
		if (err != nil) != tc.err {
			t.Errorf("%d: %v", i, err)
			continue
		}
		if err != nil {
			continue
		}
		if c.Promote != tc.promote || (c.Member != nil && (c.Member.ID != 5 || c.Member.IsLearner != tc.learner)) {
			t.Errorf("%d: decoded %+v", i, c)
		}
	}
}
