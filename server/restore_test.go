package server

import (
	"context"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// TestRestoreSynodStreamBackup: a backup in synod's earlier format (its
// snapshot stream, testdata/README.md) still restores, with the history,
// hash, lease and auth state the synod that wrote it served, and a raft log
// that starts from the new membership.
func TestRestoreSynodStreamBackup(t *testing.T) {
	res, _, st := openRestored(t, "testdata/synod-stream-v1.db")
	if res.Rev != 9 || res.CompactRev != 4 || res.Members != 3 {
		t.Errorf("restore result %+v, want revision 9 compacted at 4, 3 members", res)
	}
	if h, _, c, err := st.HashKV(9); err != nil || h != 4143698414 || c != 4 {
		t.Errorf("HashKV(9) = %d compacted %d (%v), want 4143698414 compacted 4", h, c, err)
	}
	got, err := st.Range(context.Background(), &pb.RangeRequest{Key: []byte("/a")})
	if err != nil || len(got.Kvs) != 1 || string(got.Kvs[0].Value) != "v3" || got.Kvs[0].CreateRevision != 2 || got.Kvs[0].ModRevision != 6 || got.Kvs[0].Version != 3 {
		t.Errorf("get /a: %v, %v", got.GetKvs(), err)
	}
	if idx, term := st.Applied(); idx != 3 || term != 1 {
		t.Errorf("applied %d/%d, want 3/1", idx, term)
	}
}
