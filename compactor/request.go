package compactor

import pb "go.etcd.io/etcd/api/v3/etcdserverpb"

// Request is the raft request compacting the keyspace at rev: what the
// leader's auto compaction proposes, as a client's Compact would.
func Request(rev int64) *pb.InternalRaftRequest {
	return &pb.InternalRaftRequest{Compaction: &pb.CompactionRequest{Revision: rev}}
}
