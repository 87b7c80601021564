package storage

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// BenchmarkSave persists Ready-sized batches: a HardState and 16 entries of
// 256 B, on a real directory, with and without fsync.
func BenchmarkSave(b *testing.B) {
	for _, sync := range []bool{false, true} {
		b.Run(fmt.Sprintf("sync=%v", sync), func(b *testing.B) {
			db, err := pebble.Open(b.TempDir(), &pebble.Options{Logger: quietLogger{}})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			s := mustOpen(b, db)
			const batch = 16
			data := make([]byte, 256)
			es := make([]*raftpb.Entry, batch)
			b.SetBytes(batch * int64(len(data)))
			b.ReportAllocs()
			next := uint64(1)
			for b.Loop() {
				for k := range es {
					es[k] = &raftpb.Entry{Index: proto.Uint64(next), Term: proto.Uint64(1), Data: data}
					next++
				}
				if err := s.Save(mkHS(1, 1, next-batch), es, sync); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEntriesRecent reads the last 16 saved entries, as the leader does
// right after Save to build MsgApp (served by the tail cache).
func BenchmarkEntriesRecent(b *testing.B) {
	s := mustOpen(b, memDB(b))
	if err := s.Save(nil, ents(1, 512, 1), false); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Entries(497, 513, 1<<20); err != nil {
			b.Fatal(err)
		}
	}
}
