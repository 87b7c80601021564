package statemachine

import (
	"errors"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/membership"
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

// A conf change is validated against the applied membership: an add of a
// peer URL already in use is rejected and recorded (ConfChangeRejected
// after a restart), an accepted one reaches the membership and the hook,
// and a removed ID stays removed.
func TestApplyConfChangeVerdicts(t *testing.T) {
	m, _ := openMachine(t, vfs.NewMem())
	var seen []membership.Change
	m.cfg.OnConfChange = func(c membership.Change) { seen = append(seen, c) }
	add := func(id uint64, url string) *raftpb.ConfChange {
		ctx, _ := proto.Marshal(&etcdserverpb.Member{ID: id, PeerURLs: []string{url}})
		return &raftpb.ConfChange{Type: raftpb.ConfChangeType_ConfChangeAddNode.Enum(), NodeId: proto.Uint64(id), Context: ctx}
	}
	remove := &raftpb.ConfChange{Type: raftpb.ConfChangeType_ConfChangeRemoveNode.Enum(), NodeId: proto.Uint64(2)}
	steps := []struct {
		cc   *raftpb.ConfChange
		want error
	}{
		{add(1, "http://a:1"), nil},
		{add(2, "http://b:1"), nil},
		{add(3, "http://a:1"), membership.ErrPeerURLExists},
		{remove, nil},
		{add(2, "http://c:1"), membership.ErrIDRemoved},
	}
	for i, s := range steps {
		res, err := m.ApplyConfChange(uint64(i+1), 1, s.cc)
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(res.Err, s.want) || (res.Err == nil) != (s.want == nil) {
			t.Errorf("change %d: %v, want %v", i+1, res.Err, s.want)
		}
		rejected, err := m.ConfChangeRejected(uint64(i + 1))
		if err != nil || rejected != (s.want != nil) {
			t.Errorf("change %d: recorded as rejected %v (%v)", i+1, rejected, err)
		}
	}
	if ms := m.Members().List(); len(ms) != 1 || ms[0].ID != 1 || !m.Members().IsRemoved(2) || len(seen) != 3 {
		t.Errorf("members %v, 2 removed %v, hook saw %d changes", ms, m.Members().IsRemoved(2), len(seen))
	}
}
