package mvcc

import (
	"fmt"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// Each compaction records HashKV at its revision as it was just before it
// (with the previous compaction revision), which is what peers compare:
// HashByRev answers it for that revision, HashKV answers the present.
// Only the newest compactHashesKept are kept; a store without the option
// records none; a restore forgets them.
func TestCompactHashes(t *testing.T) {
	h := newHarness(t, Options{CompactHashes: true})
	off := newHarness(t, Options{})
	var want []KeyValueHash
	for i := 0; i < compactHashesKept+3; i++ {
		for _, s := range []*harness{h, off} {
			s.put(fmt.Sprint("k", i%4), fmt.Sprint("v", i))
			s.put(fmt.Sprint("k", (i+1)%4), fmt.Sprint("w", i))
			s.del(fmt.Sprint("k", (i+2)%4), "")
			s.put("same", "x")
		}
		rev := h.s.Rev() - 1
		hash, hashRev, prev, err := h.s.HashKV(rev)
		if err != nil || hashRev != rev {
			t.Fatalf("HashKV(%d): %v %d", rev, err, hashRev)
		}
		want = append(want, KeyValueHash{Hash: hash, CompactRevision: prev, Revision: rev})
		for _, s := range []*harness{h, off} {
			waitClosed(t, s.compact(rev).Compacted, "compaction")
		}
		// The compactor hashes before it deletes, so once the physical
		// pass is done the hash is kept.
		got := h.s.CompactHashes()
		if len(got) == 0 || got[len(got)-1] != want[len(want)-1] {
			t.Fatalf("compaction %d: kept %+v, want last %+v", i, got, want[len(want)-1])
		}
	}
	got := h.s.CompactHashes()
	if fmt.Sprint(got) != fmt.Sprint(want[len(want)-compactHashesKept:]) {
		t.Fatalf("kept %v, want the newest %d of %v", got, compactHashesKept, want)
	}
	last := want[len(want)-1]
	if hash, _, prev, err := h.s.HashByRev(last.Revision); err != nil || hash != last.Hash || prev != last.CompactRevision {
		t.Fatalf("HashByRev(%d) = %d, %d, %v; want the compaction's %+v", last.Revision, hash, prev, err, last)
	}
	if _, _, prev, err := h.s.HashKV(last.Revision); err != nil || prev != last.Revision {
		t.Fatalf("HashKV(%d): compact revision %d, %v; want the current %d", last.Revision, prev, err, last.Revision)
	}
	cur, _, _, _ := h.s.HashKV(0)
	if byRev, _, _, err := h.s.HashByRev(h.s.Rev()); err != nil || byRev != cur {
		t.Fatalf("HashByRev(current) = %d, %v; want HashKV's %d", byRev, err, cur)
	}
	if n := len(off.s.CompactHashes()); n != 0 {
		t.Fatalf("a store without CompactHashes kept %d hashes", n)
	}
	// Same history, same hashes: what a peer without the option computes
	// for a revision it has not compacted at agrees with the kept hash.
	if hash, _, _, err := off.s.HashKV(0); err != nil || hash != cur {
		t.Fatalf("the same history hashes to %d (%v), want %d", hash, err, cur)
	}
	path, _ := writeSnapshot(t, off)
	if err := restoreFile(h.s, path); err != nil {
		t.Fatal(err)
	}
	if n := len(h.s.CompactHashes()); n != 0 {
		t.Fatalf("%d compaction hashes kept across a restore", n)
	}
}

// Compactions applied back to back, before the compactor gets to them:
// whatever is kept is the hash of the history at its compaction, not of a
// history the next pass has already deleted from.
func TestCompactHashesBackToBack(t *testing.T) {
	h := newHarness(t, Options{CompactHashes: true})
	before := map[int64]KeyValueHash{}
	var last <-chan struct{}
	for i := 0; i < 20; i++ {
		h.put("k", fmt.Sprint(i))
		h.put(fmt.Sprint("j", i), "x")
		rev := h.s.Rev()
		hash, _, prev, err := h.s.HashKV(rev)
		if err != nil {
			t.Fatal(err)
		}
		before[rev] = KeyValueHash{Hash: hash, CompactRevision: prev, Revision: rev}
		last = h.apply(&pb.InternalRaftRequest{Compaction: &pb.CompactionRequest{Revision: rev}}).Compacted
	}
	waitClosed(t, last, "compactions")
	got := h.s.CompactHashes()
	if len(got) == 0 {
		t.Fatal("no compaction hash kept")
	}
	for _, k := range got {
		if before[k.Revision] != k {
			t.Fatalf("kept %+v, the history at that compaction hashed to %+v", k, before[k.Revision])
		}
	}
}
