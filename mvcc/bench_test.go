package mvcc

import (
	"encoding/binary"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// BenchmarkApplyPut applies one put per entry over a store already holding
// the keys it overwrites: the per-entry apply cost a follower pays (the
// previous-version lookup, the batch and its commit).
func BenchmarkApplyPut(b *testing.B) {
	h := newHarness(b, Options{})
	const keys = 10000
	val := make([]byte, 256)
	req := func(i int) *pb.InternalRaftRequest {
		key := binary.BigEndian.AppendUint64([]byte("k"), uint64(i%keys))
		return &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: key, Value: val}}
	}
	for i := 0; i < keys; i++ {
		h.apply(req(i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.apply(req(i))
	}
}
