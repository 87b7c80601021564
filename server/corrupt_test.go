package server

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"
)

func TestCorruptionFindings(t *testing.T) {
	const self = 1
	leader := hashPoint{hash: 100, rev: 20, compactRev: 5}
	peer := func(id uint64, hash uint32, rev, compactRev int64) peerHash {
		return peerHash{id: id, resp: &etcdserverpb.HashKVResponse{
			Header: &etcdserverpb.ResponseHeader{Revision: rev}, Hash: hash, CompactRevision: compactRev, HashRevision: 20}}
	}
	silent := peerHash{id: 9, err: errors.New("mvcc: required revision is a future revision")}
	cases := []struct {
		name          string
		before, after hashPoint
		peers         []peerHash
		want          []uint64
	}{
		{"all agree", leader, leader, []peerHash{peer(2, 100, 20, 5), peer(3, 100, 20, 5)}, nil},
		{"peers moved on since (revision the leader's too)", leader, hashPoint{hash: 300, rev: 24, compactRev: 5},
			[]peerHash{peer(2, 100, 24, 5), peer(3, 100, 22, 5)}, nil},
		{"a peer compacted later than the leader's first hash, not past the second", leader,
			hashPoint{hash: 300, rev: 24, compactRev: 8}, []peerHash{peer(2, 777, 24, 8)}, nil},
		{"unanswered peers are not judged", leader, leader, []peerHash{silent, peer(3, 100, 20, 5)}, nil},
		{"a peer's hash differs", leader, leader, []peerHash{peer(2, 100, 20, 5), peer(3, 101, 20, 5)}, []uint64{3}},
		{"a peer is ahead of the leader", leader, leader, []peerHash{peer(2, 100, 21, 5)}, []uint64{2}},
		{"a peer compacted past the leader", leader, leader, []peerHash{peer(2, 100, 20, 6)}, []uint64{2}},
		{"the leader's own hash changed at the same revision", leader, hashPoint{hash: 101, rev: 20, compactRev: 5},
			[]peerHash{peer(2, 100, 20, 5)}, []uint64{self}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []uint64
			for _, f := range corruptionFindings(self, c.before, c.after, c.peers) {
				if f.reason == "" {
					t.Errorf("finding for %x without a reason", f.id)
				}
				got = append(got, f.id)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("suspects %v, want %v", got, c.want)
			}
		})
	}
}

func TestInitialCorruptionFindings(t *testing.T) {
	local := hashPoint{hash: 100, rev: 20, compactRev: 5}
	peer := func(id uint64, hash uint32, compactRev int64) peerHash {
		return peerHash{id: id, resp: &etcdserverpb.HashKVResponse{Hash: hash, CompactRevision: compactRev}}
	}
	cases := []struct {
		name  string
		peers []peerHash
		want  []uint64
	}{
		{"all agree", []peerHash{peer(2, 100, 5), peer(3, 100, 5)}, nil},
		{"another compaction revision is not compared", []peerHash{peer(2, 999, 8)}, nil},
		{"unanswered peers are skipped", []peerHash{{id: 2, err: errors.New("unreachable")}}, nil},
		{"a peer differs", []peerHash{peer(2, 100, 5), peer(3, 101, 5)}, []uint64{3}},
		{"both differ", []peerHash{peer(2, 7, 5), peer(3, 8, 5)}, []uint64{2, 3}},
	}
	for _, c := range cases {
		var got []uint64
		for _, f := range initialCorruptionFindings(local, c.peers) {
			got = append(got, f.id)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: suspects %v, want %v", c.name, got, c.want)
		}
	}
}

// TestPeerHashKVOneAtATime: a peer's hash request waits while another is
// being computed (each reads the whole history), and gives up when its
// context ends; malformed and negative requests are refused before that.
func TestPeerHashKVOneAtATime(t *testing.T) {
	m := &Member{duties: duties{hashSlot: make(chan struct{}, 1)}} // no store: reaching it would panic
	if _, err := m.PeerHashKV(context.Background(), []byte{0xff}); err == nil {
		t.Error("a malformed request was accepted")
	}
	neg, err := proto.Marshal(&etcdserverpb.HashKVRequest{Revision: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.PeerHashKV(context.Background(), neg); err == nil {
		t.Error("a negative revision was accepted")
	}
	m.hashSlot <- struct{}{} // a hash in progress
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := m.PeerHashKV(ctx, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a second request while one is computed: %v, want it to wait and give up with its context", err)
	}
}
