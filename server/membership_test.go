package server

import (
	"errors"
	"testing"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/membership"
)

func TestCheckPeerURLs(t *testing.T) {
	cases := []struct {
		urls []string
		ok   bool
	}{
		{[]string{"http://127.0.0.1:2380"}, true},
		{[]string{"https://a:1", "unix://sock:1"}, true},
		{nil, false},
		{[]string{"127.0.0.1:2380"}, false},
		{[]string{"http://h:1/path"}, false},
		{[]string{"ftp://h:1"}, false},
		{[]string{"http://h:1", "not a url"}, false},
	}
	for _, tc := range cases {
		err := checkPeerURLs(tc.urls)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, membership.ErrBadPeerURLs)) {
			t.Errorf("%v: %v", tc.urls, err)
		}
	}
}

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

func TestFindByPeerURLs(t *testing.T) {
	ms := []*etcdserverpb.Member{
		{ID: 1, PeerURLs: []string{"http://a:1"}},
		{ID: 2, PeerURLs: []string{"http://c:1", "http://b:1"}},
	}
	if m := findByPeerURLs(ms, []string{"http://b:1", "http://c:1"}); m == nil || m.ID != 2 {
		t.Fatalf("found %v", m)
	}
	if m := findByPeerURLs(ms, []string{"http://b:1"}); m != nil {
		t.Fatalf("a partial match found %v", m)
	}
}
