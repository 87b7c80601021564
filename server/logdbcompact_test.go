package server

import (
	"fmt"
	"math/rand"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/storage"
)

// TestLogDBDropsTruncatedEntriesUncompacted writes a raft log as a member
// does under a stream of 1 KiB puts (entries appended in batches, the log
// truncated every 10,000 entries to 5,000 behind the last, as with the
// default --snapshot-count and catch-up entries) into a database with
// logDBOptions, and checks that its compactions write less than half of
// what its flushes wrote: most flushed entries must be dropped by the
// compaction that meets their range deletion, not compacted into the
// level below first and rewritten (logL0CompactionThreshold,
// docs/performance.md). With Pebble's default level-0 threshold (4) the
// compactions wrote 85-97 % of what the flushes wrote.
func TestLogDBDropsTruncatedEntriesUncompacted(t *testing.T) {
	db, err := openWith(t.TempDir(), logDBOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := storage.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	value := make([]byte, 1024)
	rand.New(rand.NewSource(1)).Read(value)
	const total, perSave, every, keep = 100_000, 100, 10_000, 5_000
	for first := uint64(1); first <= total; first += perSave {
		ents := make([]*raftpb.Entry, 0, perSave)
		for i := first; i < first+perSave; i++ {
			data := append(fmt.Appendf(nil, "%017d", i), value...)
			ents = append(ents, &raftpb.Entry{Index: proto.Uint64(i), Term: proto.Uint64(1), Data: data})
		}
		last := first + perSave - 1
		hs := &raftpb.HardState{Term: proto.Uint64(1), Vote: proto.Uint64(1), Commit: proto.Uint64(last)}
		if err := s.Save(hs, ents, false); err != nil {
			t.Fatal(err)
		}
		if last%every == 0 {
			if err := s.Compact(last - keep); err != nil {
				t.Fatal(err)
			}
		}
	}
	var flushed, compacted uint64
	for _, l := range db.Metrics().Levels {
		flushed += l.TableBytesFlushed
		compacted += l.TableBytesCompacted
	}
	if flushed == 0 || compacted >= flushed/2 {
		t.Fatalf("the raft log's compactions wrote %d bytes for %d flushed: truncated entries were compacted before their deletion dropped them", compacted, flushed)
	}
	t.Logf("flushed %d bytes, compactions wrote %d", flushed, compacted)
}
