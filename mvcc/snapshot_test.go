package mvcc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/synod-db/synod/record"
)

// sourceStore builds a store with history, a compaction, other-prefix data
// and an applied index; the compaction is physically complete.
func sourceStore(t testing.TB) *harness {
	h := newHarness(t, Options{})
	compactHistory(h)
	waitClosed(t, h.compact(9).Compacted, "compaction")
	h.put("big", string(bytes.Repeat([]byte("x"), 3000)))
	h.idx++
	if err := h.s.ApplyOther(h.idx, 2, func(b *pebble.Batch) error { return b.Set([]byte{0x20, 'm'}, []byte("member"), nil) }); err != nil {
		t.Fatal(err)
	}
	return h
}

func writeSnapshot(t testing.TB, h *harness) (string, []byte) {
	t.Helper()
	sn := h.s.NewSnapshot()
	defer sn.Close()
	var buf bytes.Buffer
	n, err := sn.WriteTo(&buf)
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("WriteTo: %d %v (buffer %d)", n, err, buf.Len())
	}
	path := filepath.Join(t.TempDir(), "1.snap")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, buf.Bytes()
}

// stateDump is every raw key/value >= 0x10.
func stateDump(t testing.TB, db *pebble.DB) string {
	t.Helper()
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: stateStart})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var b bytes.Buffer
	for v := it.First(); v; v = it.Next() {
		b.WriteString(string(it.Key()) + "=" + string(it.Value()) + ";")
	}
	return b.String()
}

func sameStore(t testing.TB, a, b *harness) {
	t.Helper()
	if a.s.Rev() != b.s.Rev() || a.s.CompactRev() != b.s.CompactRev() {
		t.Fatalf("rev/compact %d/%d vs %d/%d", a.s.Rev(), a.s.CompactRev(), b.s.Rev(), b.s.CompactRev())
	}
	ai, at := a.s.Applied()
	bi, bt := b.s.Applied()
	if ai != bi || at != bt {
		t.Fatalf("applied (%d,%d) vs (%d,%d)", ai, at, bi, bt)
	}
	recordReads(a, a.s.CompactRev()).check(b, "restored store")
	ea, err1 := a.s.Events(a.s.CompactRev(), 0)
	eb, err2 := b.s.Events(b.s.CompactRev(), 0)
	if err1 != nil || err2 != nil || len(ea) != len(eb) {
		t.Fatalf("events %d %v vs %d %v", len(ea), err1, len(eb), err2)
	}
	for i := range ea {
		equalMsg(t, "event", eb[i], ea[i])
	}
}

func TestSnapshotRestore(t *testing.T) {
	src := sourceStore(t)
	path, _ := writeSnapshot(t, src)

	dst := newHarness(t, Options{})
	dst.put("stale", "gone after restore")
	if err := restoreFile(dst.s, path); err != nil {
		t.Fatal(err)
	}
	sameStore(t, src, dst)
	if stateDump(t, src.db) != stateDump(t, dst.db) {
		t.Fatal("restored keyspace differs from the source")
	}
	if kv := dst.get("stale"); kv != nil {
		t.Fatal("key from before the restore survived")
	}
	keepsAgreeing(t, src, dst)
}

// keepsAgreeing checks that a restored store keeps working and agrees with
// its source after the same writes and compaction, and across a reopen.
func keepsAgreeing(t *testing.T, src, dst *harness) {
	t.Helper()
	for _, h := range []*harness{src, dst} {
		h.idx, _ = h.s.Applied()
		h.put("after", "1")
		h.del("a", "b")
		waitClosed(t, h.compact(h.s.Rev()).Compacted, "compaction after restore")
	}
	sameStore(t, src, dst)
	dst.reopen()
	sameStore(t, src, dst)
}

// TestSnapshotPointInTime: writes after NewSnapshot are not in the stream.
func TestSnapshotPointInTime(t *testing.T) {
	src := newHarness(t, Options{})
	src.put("a", "1")
	sn := src.s.NewSnapshot()
	defer sn.Close()
	wantIdx, _ := src.s.Applied()
	src.put("b", "1")
	var buf bytes.Buffer
	if _, err := sn.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	if sn.Index() != wantIdx || sn.Term() != 1 {
		t.Fatalf("snapshot (%d,%d), want (%d,1)", sn.Index(), sn.Term(), wantIdx)
	}
	path := filepath.Join(t.TempDir(), "s")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	dst := newHarness(t, Options{})
	if err := restoreFile(dst.s, path); err != nil {
		t.Fatal(err)
	}
	if dst.s.Rev() != 2 || dst.get("b") != nil || dst.get("a") == nil {
		t.Fatalf("restored rev %d", dst.s.Rev())
	}
	if i, _ := dst.s.Applied(); i != wantIdx {
		t.Fatalf("restored applied %d, want %d", i, wantIdx)
	}
}

func TestRestoreRejectsCorruptStream(t *testing.T) {
	src := sourceStore(t)
	_, good := writeSnapshot(t, src)
	dst := newHarness(t, Options{})
	dst.put("keep", "me")
	before := stateDump(t, dst.db)
	dir := t.TempDir()
	mutations := map[string][]byte{
		"empty":          {},
		"header only":    good[:snapHeaderLen],
		"truncated":      good[:len(good)/2],
		"no crc":         good[:len(good)-4],
		"trailing byte":  append(bytes.Clone(good), 0),
		"bad magic":      append([]byte("X"), good[1:]...),
		"bad version":    append(append([]byte(snapMagic), 9), good[snapHeaderLen:]...),
		"bit flip early": flip(good, snapHeaderLen+3),
		"bit flip mid":   flip(good, len(good)/2),
		"bit flip crc":   flip(good, len(good)-1),
		"bit flip count": flip(good, len(good)-5),
	}
	for name, data := range mutations {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		err := restoreFile(dst.s, path)
		if !errors.Is(err, record.ErrCorrupt) {
			t.Fatalf("%s: Restore error %v, want ErrCorrupt", name, err)
		}
		if stateDump(t, dst.db) != before || dst.get("keep") == nil {
			t.Fatalf("%s: a rejected restore changed the store", name)
		}
		if left := ingestEntries(t, dst); len(left) != 0 {
			t.Fatalf("%s: a rejected stream left %v", name, left)
		}
	}
	if err := restoreFile(dst.s, filepath.Join(dir, "missing")); err == nil || stateDump(t, dst.db) != before {
		t.Fatalf("missing file: %v", err)
	}
}

func flip(b []byte, at int) []byte {
	c := bytes.Clone(b)
	c[at] ^= 0x01
	return c
}

// TestRestoreStreamChecks: a stream with a valid checksum but bad records
// (unordered keys, keys outside the keyspace, a marker, bad meta) is refused.
func TestRestoreStreamChecks(t *testing.T) {
	build := func(recs ...[2][]byte) []byte {
		var buf bytes.Buffer
		sw := &streamWriter{w: bufioWriter(&buf), crc: newCRC()}
		sw.write(append([]byte(snapMagic), snapVersion))
		for _, r := range recs {
			sw.record(r[0], r[1])
		}
		tr := append([]byte{frameTrailer}, be64(7)...)
		tr = append(append(tr, be64(1)...), be64(uint64(len(recs)))...)
		sw.write(tr)
		sw.writeRaw(be32(sw.crc.Sum32()))
		sw.flush()
		return buf.Bytes()
	}
	rec := func(k string, v []byte) [2][]byte { return [2][]byte{[]byte(k), v} }
	good := seal(metaRev, be64(5))
	cases := map[string][]byte{
		"raft log key":   build(rec("\x01a", []byte("x"))),
		"out of order":   build(rec("\x21b", nil), rec("\x21a", nil)),
		"duplicate":      build(rec("\x21a", nil), rec("\x21a", nil)),
		"restore marker": build(rec(string(metaRestore), seal(metaRestore, []byte("p")))),
		"bad meta seal":  build(rec(string(metaRev), flip(good, 5))),
		"bad meta size":  build(rec(string(metaRev), seal(metaRev, []byte{1}))),
	}
	dst := newHarness(t, Options{})
	for name, data := range cases {
		path := filepath.Join(t.TempDir(), "s")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := restoreFile(dst.s, path); !errors.Is(err, record.ErrCorrupt) {
			t.Fatalf("%s: %v, want ErrCorrupt", name, err)
		}
	}
	// The builder itself makes acceptable streams.
	path := filepath.Join(t.TempDir(), "ok")
	if err := os.WriteFile(path, build(rec(string(metaRev), good), rec("\x21a", []byte("x"))), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := restoreFile(dst.s, path); err != nil || dst.s.Rev() != 5 {
		t.Fatalf("valid built stream: %v rev %d", err, dst.s.Rev())
	}
	if i, tm := dst.s.Applied(); i != 7 || tm != 1 {
		t.Fatalf("applied from trailer (%d,%d)", i, tm)
	}
}

// TestRestoreMarkerMissingFile: Open refuses to serve when the marker names
// a stream file (an older release's) or received tables that are gone (the
// keyspace may be half replaced).
func TestRestoreMarkerMissingFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "gone.snap")
	gone := tablesMarker(received{index: 9, term: 2, tables: 3})
	for _, marker := range [][]byte{[]byte(missing), gone} {
		h := newHarness(t, Options{})
		if err := h.db.Set(metaRestore, seal(metaRestore, marker), pebble.Sync); err != nil {
			t.Fatal(err)
		}
		_ = h.s.Close()
		if _, err := Open(h.db, h.opts); err == nil {
			t.Fatalf("Open served with an unfinishable restore (marker %q)", marker)
		}
		h.s = nil
	}
}

// FuzzRestore: whatever the file holds, Restore never panics, and either
// rejects it (ErrCorrupt, nothing changed) or leaves a store that answers.
func FuzzRestore(f *testing.F) {
	src := sourceStore(f)
	_, good := writeSnapshot(f, src)
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add(flip(good, len(good)/3))
	f.Add([]byte(snapMagic + "\x01\x02"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		h := newHarness(t, Options{})
		h.put("keep", "me")
		before := stateDump(t, h.db)
		path := filepath.Join(t.TempDir(), "f.snap")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		err := restoreFile(h.s, path)
		if err != nil {
			if !errors.Is(err, record.ErrCorrupt) {
				t.Fatalf("Restore: %v, want ErrCorrupt", err)
			}
			if stateDump(t, h.db) != before || h.s.Rev() != 2 {
				t.Fatal("a rejected restore changed the store")
			}
			return
		}
		// Accepted: reads either work or report corruption, never panic.
		for _, r := range []*pb.RangeRequest{{Key: []byte{0}, RangeEnd: []byte{0}}, {Key: []byte("a"), Revision: h.s.CompactRev()}} {
			if _, err := h.s.Range(t.Context(), r); err != nil && !errors.Is(err, record.ErrCorrupt) &&
				!errors.Is(err, ErrCompacted) && !errors.Is(err, ErrFutureRev) {
				t.Fatalf("Range after restore: %v", err)
			}
		}
		_, _, _, _ = h.s.HashKV(0)
		_, _ = h.s.Events(h.s.CompactRev(), 10)
	})
}

// plainWriter hides a writer's AvailableBuffer, so WriteTo buffers itself.
type plainWriter struct{ w io.Writer }

func (p plainWriter) Write(b []byte) (int, error) { return p.w.Write(b) }

// TestSnapshotWriteToAnyWriter: the stream is the same byte for byte whether
// WriteTo builds its records in the writer's own buffer (bytes.Buffer) or
// through a bufio.Writer, with records smaller and larger than the buffer,
// and it parses.
func TestSnapshotWriteToAnyWriter(t *testing.T) {
	h := sourceStore(t)
	for i := range 200 {
		h.put(fmt.Sprintf("k%03d", i), strings.Repeat(string(rune('a'+i%26)), 1000+i*7))
	}
	h.put("huge", strings.Repeat("h", 100<<10))
	sn := h.s.NewSnapshot()
	defer sn.Close()
	var direct, buffered bytes.Buffer
	n1, err1 := sn.WriteTo(&direct)
	n2, err2 := sn.WriteTo(plainWriter{&buffered})
	if err1 != nil || err2 != nil || n1 != int64(direct.Len()) || n2 != int64(buffered.Len()) {
		t.Fatalf("WriteTo: %d %v, %d %v", n1, err1, n2, err2)
	}
	if !bytes.Equal(direct.Bytes(), buffered.Bytes()) {
		t.Fatalf("the stream built in place (%d bytes) differs from the one written through bufio (%d)", direct.Len(), buffered.Len())
	}
	records := 0
	if _, err := readStream(bytes.NewReader(direct.Bytes()), int64(direct.Len()), func(k, v []byte) error { records++; return nil }); err != nil {
		t.Fatal(err)
	}
	if records < 202 {
		t.Fatalf("parsed %d records, want at least 202", records)
	}
}
