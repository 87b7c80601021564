package mvcc

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// splitKeys is a sorted mix of what Pebble may hand Split: version keys of
// user keys with 0x00, 0x01 and 0xFF bytes (and revisions whose bytes hold
// 0x00 0x01), bare version prefixes, revision-log and meta keys, and keys no
// one stores (shortened index separators, a lone prefix byte).
func splitKeys() [][]byte {
	var ks [][]byte
	for _, u := range []string{"a", "a\x00", "a\x00\x01", "a\x01", "ab", "\x00", "\x00\x01", "\xff", "k\x00\x01\x00"} {
		p := versionPrefix([]byte(u))
		ks = append(ks, slices.Clone(p), versionKey([]byte(u), 1), versionKey([]byte(u), 1<<8|1), versionKey([]byte(u), ^int64(0x0100)))
		ks = append(ks, append(slices.Clone(p), 0x00), append(p[:len(p)-1:len(p)-1], 0x02))
	}
	ks = append(ks, []byte{prefixVersion}, []byte{prefixVersion, 'a', 0x00}, logKey(1, 0), logKey(0x0100, 1), metaRev, []byte{prefixOthers, 0x00, 0x01, 2})
	slices.SortFunc(ks, bytes.Compare)
	return slices.CompactFunc(ks, bytes.Equal)
}

// TestSplitUserKey checks Pebble's rules for a Split on every pair of keys
// (pebble/internal/base/comparer.go): the prefix is a byte prefix, a bare
// prefix sorts first, prefixes order as their keys do, and suffixes decide
// between keys of one prefix; and that a version key's prefix is its user
// key's version prefix, so filters and SeekPrefixGE see one prefix per key.
func TestSplitUserKey(t *testing.T) {
	ks := splitKeys()
	for _, a := range ks {
		n := splitUserKey(a)
		if n > len(a) || (n < len(a) && bytes.Compare(a[:n], a) >= 0) {
			t.Fatalf("split of %x: %d", a, n)
		}
		for _, b := range ks {
			m := splitUserKey(b)
			if bytes.Compare(a, b) <= 0 && bytes.Compare(a[:n], b[:m]) > 0 {
				t.Fatalf("%x <= %x but prefix %x > %x", a, b, a[:n], b[:m])
			}
			if bytes.Equal(a[:n], b[:m]) && bytes.Compare(a[n:], b[m:]) != bytes.Compare(a, b) {
				t.Fatalf("suffixes of %x and %x order otherwise than the keys", a, b)
			}
		}
	}
	for _, u := range []string{"a", "a\x00\x01", "\x00", "k\x00\x01\x00"} {
		vk := versionKey([]byte(u), 0x0001_0001)
		if got, want := vk[:splitUserKey(vk)], versionPrefix([]byte(u)); !bytes.Equal(got, want) {
			t.Fatalf("prefix of the version key of %q: %x, want %x", u, got, want)
		}
		p := versionPrefix([]byte(u))
		next := immediateSuccessor(nil, p)
		if splitUserKey(next) != len(next) || bytes.Compare(next, p) <= 0 || bytes.Compare(next, versionKey([]byte(u), 1)) <= 0 {
			t.Fatalf("immediate successor of %x: %x", p, next)
		}
	}
}

// TestPutFindsPreviousVersionInTables: a put of a key whose previous
// versions are only in sstables (flushed and compacted to the last level,
// generation cache empty after a reopen) continues its generation, a new key
// next to it (a longer key with it as a byte prefix) starts one, and the
// lookups go through the bloom filters; on a DB opened without Comparer the
// store reads single keys with SeekGE and answers the same.
func TestPutFindsPreviousVersionInTables(t *testing.T) {
	for _, withComparer := range []bool{true, false} {
		h := newHarness(t, Options{})
		reopen := h.reopen
		if !withComparer {
			reopen = func() { h.reopenWith(&pebble.Options{Logger: quietLogger{}}) }
			reopen()
		}
		if h.s.prefixSeek != withComparer {
			t.Fatalf("comparer %v: prefixSeek %v", withComparer, h.s.prefixSeek)
		}
		first := h.put("k", "v1").Header.Revision
		h.put("k", "v2")
		h.put("gone", "x")
		h.del("gone", "")
		for i := range 100 { // keys around "k" in the same tables
			h.put("k"+string(rune('a'+i%26))+string(rune('a'+i/26)), "x")
		}
		if err := h.db.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := h.db.Compact(context.Background(), []byte{0}, []byte{0xff}, false); err != nil {
			t.Fatal(err)
		}
		reopen()
		before := h.db.Metrics().Filter
		third := h.put("k", "v3").Header.Revision
		h.put("k\x00", "new")
		h.put("gone", "again")
		h.put("never", "new")
		after := h.db.Metrics().Filter
		equalMsg(t, "k", h.get("k"), kv("k", "v3", first, third, 3))
		equalMsg(t, "k\\x00", h.get("k\x00"), kv("k\x00", "new", third+1, third+1, 1))
		equalMsg(t, "gone", h.get("gone"), kv("gone", "again", third+2, third+2, 1))
		if used := after.Hits + after.Misses - before.Hits - before.Misses; withComparer && used == 0 {
			t.Fatalf("the lookups did not consult a bloom filter (%+v, then %+v)", before, after)
		} else if !withComparer && used != 0 {
			t.Fatalf("bloom filters used without Comparer: %+v", after)
		}
	}
}

// reopenWith reopens the store, on a DB opened with o.
func (h *harness) reopenWith(o *pebble.Options) {
	h.t.Helper()
	if err := h.s.Close(); err != nil {
		h.t.Fatal(err)
	}
	if err := h.db.Close(); err != nil {
		h.t.Fatal(err)
	}
	o.FS = h.fs
	db, err := pebble.Open("db", o)
	if err != nil {
		h.t.Fatal(err)
	}
	h.db = db
	h.open()
}

// TestHasPrefixSeek: the probe tells the two comparers apart and leaves
// nothing behind.
func TestHasPrefixSeek(t *testing.T) {
	fs := vfs.NewMem()
	db := openDB(t, fs)
	if !hasPrefixSeek(db) {
		t.Fatal("Comparer not detected")
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := pebble.Open("db", &pebble.Options{FS: fs, Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if hasPrefixSeek(db) {
		t.Fatal("default comparer taken for Comparer")
	}
	if _, closer, err := db.Get(versionKey(probeUserKey, 1)); err == nil {
		closer.Close()
		t.Fatal("the probe wrote its key")
	}
}
