package mvcc

import (
	"bytes"
	"errors"
	"os"
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
					tables, _ = dst.fs.List(dst.opts.IngestDir)
				}
				return nil
			}}}, f.fmv)
			oldState(t, dst)
			if err := dst.s.Restore(path); err != nil {
				t.Fatal(err)
			}
			if len(tables) < 2 {
				t.Fatalf("restore wrote tables %v, want several", tables)
			}
			if _, err := dst.fs.Stat(dst.opts.IngestDir); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("restore tables left behind: %v", err)
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
	if err := dst.s.Restore(path); err != nil {
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

// TestRestoreInterrupted: a restore that dies after writing its tables, or
// after ingesting them but before its final batch, leaves the store failed
// with the marker set and no tables behind; Open finishes it.
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
				if err := dst.s.Restore(path); !errors.Is(err, errInjected) {
					t.Fatalf("Restore: %v, want injected failure", err)
				}
				if _, err := dst.s.Range(t.Context(), &pb.RangeRequest{Key: []byte("a")}); !errors.Is(err, errInjected) {
					t.Fatalf("Range on a half-restored store: %v", err)
				}
				if p, err := readMeta(dst.db, metaRestore, 0); err != nil || string(p) != path {
					t.Fatalf("restore marker %q %v", p, err)
				}
				if _, err := dst.fs.Stat(dst.opts.IngestDir); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("failed restore left its tables: %v", err)
				}
				dst.opts.hooks = nil
				dst.reopen()
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

// TestRestoreRemovesLeftoverTables: tables a crash left in the ingest
// directory are removed when the store opens.
func TestRestoreRemovesLeftoverTables(t *testing.T) {
	h := newDiskHarness(t, Options{}, 0)
	if err := os.MkdirAll(h.opts.IngestDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.opts.IngestDir+"/000000.sst", []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.reopen()
	if _, err := os.Stat(h.opts.IngestDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("leftover tables after Open: %v", err)
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
	if err := h.s.Restore(path); !errors.Is(err, ErrNoIngestDir) {
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
