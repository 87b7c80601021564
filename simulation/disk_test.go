package simulation

import (
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func ent(i uint64) *raftpb.Entry {
	return &raftpb.Entry{Index: proto.Uint64(i), Term: proto.Uint64(1), Type: raftpb.EntryType_EntryNormal.Enum()}
}

// TestDiskCrashKeepsSyncedDropsUnsynced: a crash keeps exactly what was
// synced, across several crashes in a row.
func TestDiskCrashKeepsSyncedDropsUnsynced(t *testing.T) {
	d, err := newDisk()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.open(); err != nil {
		t.Fatal(err)
	}
	next := uint64(1)
	for round := 0; round < 4; round++ {
		synced := next + 2
		for ; next <= synced; next++ {
			if err := d.log.Save(nil, []*raftpb.Entry{ent(next)}, true); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.log.Save(nil, []*raftpb.Entry{ent(next)}, false); err != nil {
			t.Fatal(err)
		}
		d.crash()
		if err := d.open(); err != nil {
			t.Fatal(err)
		}
		last, _ := d.log.LastIndex()
		if last != synced {
			t.Fatalf("round %d: last index after crash %d, want %d (synced)", round, last, synced)
		}
	}
}
