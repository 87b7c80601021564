package server

import (
	"errors"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/storage"
)

func confEntry(index, term uint64, typ raftpb.ConfChangeType, id uint64) *raftpb.Entry {
	data, _ := proto.Marshal(&raftpb.ConfChange{Type: typ.Enum(), NodeId: proto.Uint64(id)})
	return &raftpb.Entry{Type: raftpb.EntryType_EntryConfChange.Enum(), Index: proto.Uint64(index), Term: proto.Uint64(term), Data: data}
}

func dataEntry(index, term uint64) *raftpb.Entry {
	return &raftpb.Entry{Type: raftpb.EntryType_EntryNormal.Enum(), Index: proto.Uint64(index), Term: proto.Uint64(term), Data: []byte("x")}
}

const (
	add     = raftpb.ConfChangeType_ConfChangeAddNode
	remove  = raftpb.ConfChangeType_ConfChangeRemoveNode
	learn   = raftpb.ConfChangeType_ConfChangeAddLearnerNode
	selfID  = uint64(0x30)
	otherID = uint64(0x10) // sorts before selfID
	thirdID = uint64(0x50)
)

// founded is the log of a three-member cluster: its bootstrap conf changes
// at term 1, then data entries at term 2.
func founded(upTo uint64) []*raftpb.Entry {
	ents := []*raftpb.Entry{confEntry(1, 1, add, selfID), confEntry(2, 1, add, otherID), confEntry(3, 1, add, thirdID)}
	for i := uint64(4); i <= upTo; i++ {
		ents = append(ents, dataEntry(i, 2))
	}
	return ents
}

func openLog(t *testing.T, commit uint64, ents []*raftpb.Entry) *storage.LogStore {
	t.Helper()
	db, err := pebble.Open("db", &pebble.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	log, err := storage.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	if ents != nil {
		hs := &raftpb.HardState{Term: proto.Uint64(3), Vote: proto.Uint64(otherID), Commit: proto.Uint64(commit)}
		if err := log.Save(hs, ents, true); err != nil {
			t.Fatal(err)
		}
	}
	return log
}

func noneRejected(uint64) (bool, error) { return false, nil }

// TestForceNewClusterRewritesTheLog: the uncommitted tail is dropped, the
// commit index is the larger of the stored one and the applied index, and
// every other member's removal follows it at the current term, committed,
// in ascending ID order (etcd's CreateConfigChangeEnts).
func TestForceNewClusterRewritesTheLog(t *testing.T) {
	log := openLog(t, 8, founded(12))
	f, err := forceNewCluster(log, selfID, 9, noneRejected)
	if err != nil {
		t.Fatal(err)
	}
	if f.storedCommit != 8 || f.commit != 11 || f.discarded != 3 || !slices.Equal(f.removed, []uint64{otherID, thirdID}) {
		t.Fatalf("forced restart = %+v", f)
	}
	hs, _, _ := log.InitialState()
	last, _ := log.LastIndex()
	if hs.GetCommit() != 11 || hs.GetTerm() != 3 || hs.GetVote() != otherID || last != 11 {
		t.Fatalf("hard state %v, last index %d; want commit 11 term 3 vote %x, last 11", hs, last, otherID)
	}
	ents, err := log.Entries(9, 12, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	want := []*raftpb.Entry{dataEntry(9, 2), confEntry(10, 3, remove, otherID), confEntry(11, 3, remove, thirdID)}
	for i := range want {
		if !proto.Equal(ents[i], want[i]) {
			t.Errorf("entry %d = %v, want %v", want[i].GetIndex(), ents[i], want[i])
		}
	}
	// The next start with the flag finds a one-member configuration.
	f, err = forceNewCluster(log, selfID, 11, noneRejected)
	if err != nil || len(f.removed) != 0 {
		t.Fatalf("second forced restart = %+v, %v; want nothing to do", f, err)
	}
	if last, _ := log.LastIndex(); last != 11 {
		t.Fatalf("second forced restart changed the log: last index %d", last)
	}
}

// TestForceNewClusterConfiguration: the configuration is followed through
// the log: added, promoted and removed members, rejected changes skipped.
func TestForceNewClusterConfiguration(t *testing.T) {
	const added, gone, refused = uint64(0x60), uint64(0x70), uint64(0x80)
	ents := append(founded(5),
		confEntry(6, 2, learn, added), confEntry(7, 2, add, added), // a learner, promoted
		confEntry(8, 2, add, gone), confEntry(9, 2, remove, gone), // added, then removed
		confEntry(10, 2, add, refused), // rejected on apply
		dataEntry(11, 2))
	rejected := func(i uint64) (bool, error) { return i == 10, nil }
	f, err := forceNewCluster(openLog(t, 11, ents), selfID, 11, rejected)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.removed, []uint64{otherID, thirdID, added}) {
		t.Fatalf("removed %x, want %x", f.removed, []uint64{otherID, thirdID, added})
	}
}

// TestForceNewClusterRefusals: a learner, a member not in the
// configuration, and an applied index past the log are refused with
// ErrForceNewCluster; a log with no raft state is left alone.
func TestForceNewClusterRefusals(t *testing.T) {
	asLearner := append(founded(4), confEntry(5, 2, learn, 0x99))
	for name, tc := range map[string]struct {
		self, applied uint64
		ents          []*raftpb.Entry
	}{
		"learner":         {0x99, 5, asLearner},
		"not a member":    {0x42, 4, founded(4)},
		"applied too far": {selfID, 9, founded(4)},
	} {
		_, err := forceNewCluster(openLog(t, 4, tc.ents), tc.self, tc.applied, noneRejected)
		if !errors.Is(err, ErrForceNewCluster) {
			t.Errorf("%s: error %v, want ErrForceNewCluster", name, err)
		}
	}
	if f, err := forceNewCluster(openLog(t, 0, nil), selfID, 0, noneRejected); err != nil || f.removed != nil {
		t.Errorf("empty log: %+v, %v; want nothing done", f, err)
	}
}

// TestForceNewClusterAfterSnapshot: behind a snapshot the configuration
// comes from the snapshot's ConfState (the log before it is truncated), and
// a learner added after it is removed too.
func TestForceNewClusterAfterSnapshot(t *testing.T) {
	const later = uint64(0x61)
	log := openLog(t, 25, append(founded(25), confEntry(26, 2, learn, later), dataEntry(27, 2)))
	cs := &raftpb.ConfState{Voters: []uint64{selfID, otherID, thirdID}}
	if _, err := log.CreateSnapshot(20, cs); err != nil {
		t.Fatal(err)
	}
	if err := log.Compact(15); err != nil {
		t.Fatal(err)
	}
	f, err := forceNewCluster(log, selfID, 27, noneRejected)
	if err != nil {
		t.Fatal(err)
	}
	if f.commit != 30 || !slices.Equal(f.removed, []uint64{otherID, thirdID, later}) {
		t.Fatalf("forced restart = %+v; want commit 30 and %x removed", f, []uint64{otherID, thirdID, later})
	}
	if first, _ := log.FirstIndex(); first != 16 {
		t.Fatalf("first index %d, want 16 (the truncated log is left alone)", first)
	}
}
