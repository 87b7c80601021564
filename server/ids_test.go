package server

import "testing"

// The expected values were read from a real etcd v3.7.3 started with
// --initial-advertise-peer-urls http://127.0.0.1:42380 and the default token.
func TestIDsMatchEtcd(t *testing.T) {
	m := MemberID([]string{"http://127.0.0.1:42380"}, "etcd-cluster", nil)
	if m != 7383792418829112008 {
		t.Fatalf("MemberID = %d, etcd computes 7383792418829112008", m)
	}
	if c := ClusterID([]uint64{m}); c != 15875391935852295136 {
		t.Fatalf("ClusterID = %d, etcd computes 15875391935852295136", c)
	}
}
