package server

import (
	"errors"
	"fmt"
	"testing"

	"go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/synod-db/synod/mvcc"
)

func TestCompactHashVerdict(t *testing.T) {
	leader := mvcc.KeyValueHash{Hash: 7, CompactRevision: 10, Revision: 20}
	ans := func(id uint64, hash uint32, compactRev int64) peerHash {
		return peerHash{id: id, resp: &etcdserverpb.HashKVResponse{Hash: hash, CompactRevision: compactRev, HashRevision: 20}}
	}
	silent := func(id uint64) peerHash { return peerHash{id: id, err: errors.New("unreachable")} }
	for _, tc := range []struct {
		name    string
		peers   []peerHash
		done    bool
		agreed  bool
		checked int
		skipped int
		corrupt []uint64
	}{
		{"all alike", []peerHash{ans(2, 7, 10), ans(3, 7, 10)}, true, true, 2, 0, nil},
		{"one silent: try an older hash", []peerHash{ans(2, 7, 10), silent(3)}, false, false, 1, 1, nil},
		{"other compaction: skipped", []peerHash{ans(2, 7, 10), ans(3, 9, 20)}, false, false, 1, 1, nil},
		{"one differs", []peerHash{ans(2, 7, 10), ans(3, 8, 10)}, true, false, 2, 0, []uint64{3}},
		{"the leader differs", []peerHash{ans(2, 8, 10), ans(3, 8, 10)}, true, false, 2, 0, []uint64{1}},
		{"all differ: the whole cluster", []peerHash{ans(2, 8, 10), ans(3, 9, 10)}, true, false, 2, 0, []uint64{0}},
		{"one differs, one silent: no majority", []peerHash{ans(2, 8, 10), silent(3)}, true, false, 1, 1, []uint64{0}},
		{"five members, two differ", []peerHash{ans(2, 7, 10), ans(3, 7, 10), ans(4, 8, 10), ans(5, 9, 10)}, true, false, 4, 0, []uint64{4, 5}},
		{"five members, two against two, one silent", []peerHash{ans(2, 7, 10), ans(3, 8, 10), ans(4, 8, 10), silent(5)}, true, false, 3, 1, []uint64{0}},
		{"single member", nil, true, true, 0, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := compactHashVerdict(1, leader, tc.peers)
			if v.done != tc.done || v.agreed != tc.agreed || v.checked != tc.checked || len(v.skipped) != tc.skipped ||
				fmt.Sprint(v.corrupt) != fmt.Sprint(tc.corrupt) {
				t.Fatalf("verdict %+v; want done=%v agreed=%v checked=%d skipped=%d corrupt=%v",
					v, tc.done, tc.agreed, tc.checked, tc.skipped, tc.corrupt)
			}
		})
	}
}
