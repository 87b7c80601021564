package mvcc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// ingestFormats are the database formats a restore meets: below the one
// that can excise (old keys range-deleted) and the member's (excised).
var ingestFormats = []struct {
	name string
	fmv  pebble.FormatMajorVersion
}{
	{"range-delete", pebble.FormatFlushableIngest},
	{"excise", pebble.FormatTableFormatV6},
}

// oldState gives h keys that a restore of sourceStore must remove: user
// keys sorting before, between and after the source's, revision-log and
// meta entries beyond its revision, and other packages' keys around and
// after its one (up to the last possible prefix byte).
func oldState(t *testing.T, h *harness) {
	t.Helper()
	for _, k := range []string{"0", "a\x00\x00", "ab", "c\xff", "zzz"} {
		h.put(k, "old "+k)
	}
	for i := 0; i < 20; i++ {
		h.put("later", "old")
	}
	for _, k := range []string{"\x20a", "\x20z", "\x30", "\xff\xff"} {
		h.idx++
		if err := h.s.ApplyOther(h.idx, 1, func(b *pebble.Batch) error { return b.Set([]byte(k), []byte("old"), nil) }); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRestoreByIngest: a restore yields exactly the snapshot's keyspace
// (none of the old keys), written as several sstables next to the DB and
// removed after, and a store that works: a snapshot of it is the stream it
// was restored from, and it agrees with the source through compactions,
// writes and a reopen.
func TestRestoreByIngest(t *testing.T) {
	for _, f := range ingestFormats {
		t.Run(f.name, func(t *testing.T) {
			src := sourceStore(t)
			path, stream := writeSnapshot(t, src)
			var dst *harness
			var tables []string
			dst = newDiskHarness(t, Options{hooks: &testHooks{restoreTableBytes: 512, restoreStep: func(step string) error {
				if step == stepTablesWritten {
					tables = receivedFiles(t, dst)
				}
				return nil
			}}}, f.fmv)
			oldState(t, dst)
			if err := restoreFile(dst.s, path); err != nil {
				t.Fatal(err)
			}
			if len(tables) < 2 {
				t.Fatalf("restore wrote tables %v, want several", tables)
			}
			if left := ingestEntries(t, dst); len(left) != 0 {
				t.Fatalf("restore tables left behind: %v", left)
			}
			want := stateDump(t, src.db)
			if got := stateDump(t, dst.db); got != want {
				t.Fatalf("restored keyspace differs from the source:\n got %q\nwant %q", got, want)
			}
			sameStore(t, src, dst)
			if _, again := writeSnapshot(t, dst); !bytes.Equal(again, stream) {
				t.Fatal("a snapshot of the restored store differs from the stream it was restored from")
			}
			if err := dst.db.Compact(t.Context(), []byte{0}, []byte{0xff, 0xff, 0xff}, false); err != nil {
				t.Fatal(err)
			}
			if got := stateDump(t, dst.db); got != want {
				t.Fatal("a full compaction changed the restored keyspace")
			}
			keepsAgreeing(t, src, dst)
		})
	}
}

// TestRestoreKeepsOpenSnapshots: a snapshot of the store open during a
// restore (a stream being sent, a client's backup) still reads the state
// it was taken of: the old keys are not excised from under it.
func TestRestoreKeepsOpenSnapshots(t *testing.T) {
	src := sourceStore(t)
	path, _ := writeSnapshot(t, src)
	dst := newDiskHarness(t, Options{}, pebble.FormatTableFormatV6)
	oldState(t, dst)
	sn := dst.s.NewSnapshot()
	var before, after bytes.Buffer
	if _, err := sn.WriteTo(&before); err != nil {
		t.Fatal(err)
	}
	if err := restoreFile(dst.s, path); err != nil {
		t.Fatal(err)
	}
	if _, err := sn.WriteTo(&after); err != nil {
		t.Fatal(err)
	}
	if err := sn.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before.Bytes(), after.Bytes()) {
		t.Fatal("a restore changed what an open snapshot reads")
	}
	sameStore(t, src, dst)
}

// TestRestoreInterrupted: a restore that dies after writing its marker, or
// after ingesting the tables but before its final batch, leaves the store
// failed with the marker set and the received tables in place; Open
// finishes it from them and removes them.
func TestRestoreInterrupted(t *testing.T) {
	for _, f := range ingestFormats {
		for _, at := range []string{stepTablesWritten, stepIngested} {
			t.Run(f.name+"/"+at, func(t *testing.T) {
				src := sourceStore(t)
				path, _ := writeSnapshot(t, src)
				dst := newDiskHarness(t, Options{hooks: &testHooks{restoreTableBytes: 512, restoreStep: func(step string) error {
					if step == at {
						return errInjected
					}
					return nil
				}}}, f.fmv)
				oldState(t, dst)
				if err := restoreFile(dst.s, path); !errors.Is(err, errInjected) {
					t.Fatalf("Restore: %v, want injected failure", err)
				}
				if _, err := dst.s.Range(t.Context(), &pb.RangeRequest{Key: []byte("a")}); !errors.Is(err, errInjected) {
					t.Fatalf("Range on a half-restored store: %v", err)
				}
				p, err := readMeta(dst.db, metaRestore, 0)
				if r, ok := parseReceived(string(p[min(1, len(p)):])); err != nil || !ok || p[0] != markerTables ||
					r.index != src.idx {
					t.Fatalf("restore marker %q %v", p, err)
				}
				if n := len(receivedFiles(t, dst)); n < 2 {
					t.Fatalf("an interrupted restore kept %d of its tables, want them all", n)
				}
				dst.opts.hooks = nil
				dst.reopen()
				if left := ingestEntries(t, dst); len(left) != 0 {
					t.Fatalf("tables left after the restore finished: %v", left)
				}
				sameStore(t, src, dst)
				if p, _ := readMeta(dst.db, metaRestore, 0); p != nil {
					t.Fatal("marker left after the restore finished")
				}
				if stateDump(t, src.db) != stateDump(t, dst.db) {
					t.Fatal("finished restore differs from the source")
				}
			})
		}
	}
}

// TestRestoreRemovesLeftoverTables: what a crash or an older release left
// in the ingest directory (a receipt cut off, loose tables, a snapshot at
// or below the applied index) is removed when the store opens; a received
// snapshot above it, which the raft log may yet install, is kept.
func TestRestoreRemovesLeftoverTables(t *testing.T) {
	h := newDiskHarness(t, Options{}, 0)
	h.put("a", "1")
	h.put("b", "2")
	applied, _ := h.s.Applied()
	dir := h.opts.IngestDir
	keep := received{index: applied + 1, term: 1, tables: 0}.name()
	for _, d := range []string{"recv-01-02-3.tmp", received{index: applied, term: 1}.name(), "file.tmp", keep} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "000000.sst"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.reopen()
	if left := ingestEntries(t, h); len(left) != 1 || left[0] != keep {
		t.Fatalf("after Open the ingest directory holds %v, want only %s", left, keep)
	}
}

// TestRestoreNeedsIngestDir: a store opened without a directory for the
// tables refuses a restore before changing anything.
func TestRestoreNeedsIngestDir(t *testing.T) {
	src := sourceStore(t)
	path, _ := writeSnapshot(t, src)
	h := newHarness(t, Options{FS: vfs.Default}) // a filesystem, no directory
	h.put("keep", "me")
	before := stateDump(t, h.db)
	if err := restoreFile(h.s, path); !errors.Is(err, ErrNoIngestDir) {
		t.Fatalf("ReceiveSnapshot without IngestDir: %v", err)
	}
	if err := h.s.Restore(1, 1); !errors.Is(err, ErrNoIngestDir) {
		t.Fatalf("Restore without IngestDir: %v", err)
	}
	if stateDump(t, h.db) != before || h.get("keep") == nil {
		t.Fatal("a refused restore changed the store")
	}
}

// TestRestoreTablesDoNotSpanMarker: the restore marker is in the memtable
// while the tables are ingested, so a table is cut there, whatever its
// size: a table spanning it would be ingested into L0 and compacted again.
func TestRestoreTablesDoNotSpanMarker(t *testing.T) {
	fs := vfs.NewMem()
	tw := newTableWriter(fs, "", pebble.FormatTableFormatV6.MaxTableFormat(), 1<<30)
	for _, k := range [][]byte{{prefixVersion, 'a'}, metaApplied, {prefixMeta, 0x05, 0xff}, {prefixMeta, 0x07}, {prefixOthers, 'm'}} {
		if err := tw.add(k, []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.finish(); err != nil {
		t.Fatal(err)
	}
	if len(tw.paths) != 2 {
		t.Fatalf("%d tables, want 2: one each side of the marker", len(tw.paths))
	}
}

// TestRestoreTablesUseMemberBlockSize: restore tables have the member's
// 32 KiB blocks, so values compress together as in its own tables: 256
// records with the same 1 KiB value take well under one block each.
func TestRestoreTablesUseMemberBlockSize(t *testing.T) {
	fs := vfs.NewMem()
	tw := newTableWriter(fs, "", pebble.FormatTableFormatV6.MaxTableFormat(), 1<<30)
	val := make([]byte, 1024)
	for i := range val {
		val[i] = byte(i * 7919 >> 3)
	}
	for i := 0; i < 256; i++ {
		if err := tw.add([]byte{prefixOthers, byte(i)}, val); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.finish(); err != nil {
		t.Fatal(err)
	}
	st, err := fs.Stat(tw.paths[0])
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > 32<<10 {
		t.Fatalf("table of 256 KiB of one repeated value is %d bytes: blocks too small to compress it", st.Size())
	}
}

// restoreFile receives the stream in the file at path as the leader's
// snapshot of the index and term its trailer names (1, 1 for a file too
// short to have one) and restores it: what a follower does with a stream.
func restoreFile(s *Store, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	index, term := trailerOf(data)
	if err := s.ReceiveSnapshot(index, term, bytes.NewReader(data)); err != nil {
		return err
	}
	return s.Restore(index, term)
}

// trailerOf reads the index and term in the trailer of a stream.
func trailerOf(data []byte) (index, term uint64) {
	if len(data) < snapHeaderLen+snapTrailerLen+4 {
		return 1, 1
	}
	t := data[len(data)-4-snapTrailerLen+1:]
	return binary.BigEndian.Uint64(t), binary.BigEndian.Uint64(t[8:])
}

// ingestEntries lists h's ingest directory (nothing if it does not exist).
func ingestEntries(t testing.TB, h *harness) []string {
	t.Helper()
	names, err := h.fs.List(h.opts.IngestDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

// receivedFiles lists the tables of the received snapshots in h's ingest
// directory.
func receivedFiles(t testing.TB, h *harness) []string {
	t.Helper()
	var out []string
	for _, d := range ingestEntries(t, h) {
		if _, ok := parseReceived(d); !ok {
			continue
		}
		names, err := h.fs.List(h.fs.PathJoin(h.opts.IngestDir, d))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if strings.HasSuffix(n, ".sst") {
				out = append(out, d+"/"+n)
			}
		}
	}
	return out
}

// TestRestoreFinishesOlderReleaseMarker: a restore an older release left
// interrupted, its marker naming the stream file, is finished from that
// file when the store opens.
func TestRestoreFinishesOlderReleaseMarker(t *testing.T) {
	src := sourceStore(t)
	path, _ := writeSnapshot(t, src)
	dst := newDiskHarness(t, Options{}, pebble.FormatTableFormatV6)
	oldState(t, dst)
	if err := dst.db.Set(metaRestore, seal(metaRestore, []byte(path)), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	dst.reopen()
	restoredFrom(t, src, dst)
}

// restoredFrom checks that dst finished restoring src's snapshot: the same
// keyspace and store, no marker, nothing left in the ingest directory.
func restoredFrom(t *testing.T, src, dst *harness) {
	t.Helper()
	if got, want := stateDump(t, dst.db), stateDump(t, src.db); got != want {
		t.Fatal("the restored state is not the snapshot's")
	}
	if p, _ := readMeta(dst.db, metaRestore, 0); p != nil {
		t.Fatal("marker left after the restore finished")
	}
	if left := ingestEntries(t, dst); len(left) != 0 {
		t.Fatalf("tables left: %v", left)
	}
	sameStore(t, src, dst)
}
