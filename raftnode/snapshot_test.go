package raftnode

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// A snapshot stream that arrives corrupt or cut off is refused before
// raft sees it, and leaves nothing on the member's disk: no table, no
// directory, no file.
func TestReceivedSnapshotRefusedLeavesNothing(t *testing.T) {
	c := newMemCluster(t, 1, 10000)
	lead := c.waitLeader()
	m := c.members[lead]
	for i := 0; i < 50; i++ {
		if _, err := m.node.Propose(tctx(t), put(string(rune('a'+i%26))+"key", "v")); err != nil {
			t.Fatal(err)
		}
	}
	sn := m.store.NewSnapshot()
	var stream bytes.Buffer
	_, err := sn.WriteTo(&stream)
	sn.Close()
	if err != nil {
		t.Fatal(err)
	}
	good := stream.Bytes()
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 0x40
	msg := &raftpb.Message{Type: raftpb.MessageType_MsgSnap.Enum(), To: proto.Uint64(lead), From: proto.Uint64(9),
		Term: proto.Uint64(m.node.Term()), Snapshot: &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{
			Index: proto.Uint64(sn.Index() + 100), Term: proto.Uint64(sn.Term()), ConfState: &raftpb.ConfState{}}}}
	for name, body := range map[string][]byte{"corrupt chunk": flipped, "cut off": good[:len(good)*2/3], "other snapshot's": good} {
		if err := m.node.ReceiveSnapshot(msg, bytes.NewReader(body)); err == nil {
			t.Fatalf("%s stream accepted", name)
		}
		if left, err := m.fs.List("db.ingest"); err == nil && len(left) != 0 {
			t.Fatalf("%s stream left %v", name, left)
		}
	}
	if st := m.node.Stats(); st.SnapshotsInstalled != 0 {
		t.Fatalf("%d snapshots installed from refused streams", st.SnapshotsInstalled)
	}
}

// The received snapshot files an older release kept in SnapDir are
// removed when the member starts.
func TestOldSnapshotFilesRemoved(t *testing.T) {
	c := newMemCluster(t, 1, 10000)
	m := c.members[c.waitLeader()]
	c.stop(m.id)
	dir := filepath.Join(c.snapDir, "1")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	old := []string{"0000000000000002-0000000000000064.snap", "0000000000000002-00000000000000c8.snap.tmp"}
	for _, n := range old {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("stream"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c.start(m.id, m.fs)
	for _, n := range old {
		if _, err := os.Stat(filepath.Join(dir, n)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s left at start: %v", n, err)
		}
	}
}
