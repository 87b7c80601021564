package mvcc

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/synod-db/synod/internal/durable"
	"github.com/synod-db/synod/record"
)

// cutReader yields the first n bytes of data, then fails with err (io.EOF:
// the stream simply ends there); with once, only the first time, and
// io.EOF after that (a reader may do that after an error).
type cutReader struct {
	r    io.Reader
	err  error
	once bool
}

func cutAt(data []byte, n int, err error) io.Reader {
	return &cutReader{r: bytes.NewReader(data[:n]), err: err}
}

func (c *cutReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if errors.Is(err, io.EOF) {
		err = c.err
		if c.once {
			c.err = io.EOF
		}
		return n, err
	}
	return n, err
}

// TestReceiveCutOffLeavesNothing: a stream that stops part way (the link
// fails, or the sender's stream just ends) is refused, and no table, no
// directory and no file of it is left; the store is unchanged.
func TestReceiveCutOffLeavesNothing(t *testing.T) {
	src := sourceStore(t)
	_, stream := writeSnapshot(t, src)
	index, term := trailerOf(stream)
	dst := newDiskHarness(t, Options{hooks: &testHooks{restoreTableBytes: 512}}, pebble.FormatTableFormatV6)
	dst.put("keep", "me")
	before := stateDump(t, dst.db)
	linkDown := errors.New("link down")
	for _, at := range []int{0, snapHeaderLen, len(stream) / 3, len(stream) - 5, len(stream) - 1} {
		for i, end := range []error{io.EOF, linkDown, linkDown} {
			body := cutAt(stream, at, end)
			body.(*cutReader).once = i == 2 // the failure must be reported although the body forgets it
			err := dst.s.ReceiveSnapshot(index, term, body)
			if end == io.EOF && !errors.Is(err, record.ErrCorrupt) || end == linkDown && !errors.Is(err, linkDown) {
				t.Fatalf("cut at %d by %v: %v", at, end, err)
			}
			if left := ingestEntries(t, dst); len(left) != 0 {
				t.Fatalf("cut at %d by %v: left %v", at, end, left)
			}
			if err := dst.s.Restore(index, term); !errors.Is(err, ErrNoSnapshot) {
				t.Fatalf("Restore of a cut-off stream: %v, want ErrNoSnapshot", err)
			}
		}
	}
	if stateDump(t, dst.db) != before {
		t.Fatal("a cut-off stream changed the store")
	}
}

// TestReceiveChecksSnapshotIdentity: a stream whose trailer names another
// index or term than its message is refused and leaves nothing.
func TestReceiveChecksSnapshotIdentity(t *testing.T) {
	src := sourceStore(t)
	_, stream := writeSnapshot(t, src)
	index, term := trailerOf(stream)
	dst := newDiskHarness(t, Options{}, pebble.FormatTableFormatV6)
	for _, id := range [][2]uint64{{index + 1, term}, {index, term + 1}} {
		if err := dst.s.ReceiveSnapshot(id[0], id[1], bytes.NewReader(stream)); !errors.Is(err, record.ErrCorrupt) {
			t.Fatalf("stream of (%d,%d) received as (%d,%d): %v", index, term, id[0], id[1], err)
		}
		if left := ingestEntries(t, dst); len(left) != 0 {
			t.Fatalf("a refused stream left %v", left)
		}
	}
}

// TestReceiveSupersededRemoved: a received snapshot that a newer one's
// restore supersedes is removed with it, one above it is left for raft,
// and one received after, at or below the applied index (raft drops it as
// stale), is removed by the next receipt.
func TestReceiveSupersededRemoved(t *testing.T) {
	src := sourceStore(t)
	_, older := writeSnapshot(t, src)
	src.put("newer", "1")
	_, newer := writeSnapshot(t, src)
	src.put("newest", "1")
	_, newest := writeSnapshot(t, src)
	dst := newDiskHarness(t, Options{}, pebble.FormatTableFormatV6)
	receive := func(stream []byte) (uint64, uint64) {
		t.Helper()
		index, term := trailerOf(stream)
		if err := dst.s.ReceiveSnapshot(index, term, bytes.NewReader(stream)); err != nil {
			t.Fatal(err)
		}
		return index, term
	}
	receive(older)
	receive(older) // a second copy of the same snapshot: one directory
	ni, nt := receive(newer)
	ti, _ := receive(newest)
	if got := ingestEntries(t, dst); len(got) != 3 {
		t.Fatalf("three snapshots received, ingest directory holds %v", got)
	}
	if err := dst.s.Restore(ni, nt); err != nil {
		t.Fatal(err)
	}
	got := ingestEntries(t, dst)
	if r, ok := parseReceived(got[0]); len(got) != 1 || !ok || r.index != ti {
		t.Fatalf("after restoring %d the ingest directory holds %v, want only the snapshot at %d", ni, got, ti)
	}
	receive(older) // stale: raft drops it
	receive(newest)
	if got := ingestEntries(t, dst); len(got) != 1 {
		t.Fatalf("a stale snapshot was kept: %v", got)
	}
}

// crashHarness is a store on a crashable in-memory filesystem whose
// database directory is durable, as an installed member's is.
func crashHarness(t *testing.T, opts Options) *harness {
	t.Helper()
	fs := vfs.NewCrashableMem()
	if err := fs.MkdirAll("db", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := durable.SyncDir(fs, ""); err != nil {
		t.Fatal(err)
	}
	opts.FS, opts.IngestDir = fs, "db.ingest"
	return startHarness(t, &harness{t: t, fs: fs, dir: "db", fmv: pebble.FormatTableFormatV6, opts: opts})
}

// crashClone is what h's filesystem holds synced at this instant.
func (h *harness) crashClone() *vfs.MemFS {
	return h.fs.(*vfs.MemFS).CrashClone(vfs.CrashCloneCfg{})
}

// restartOn reopens h's database and store on disk, as a restart after a
// crash does.
func (h *harness) restartOn(disk *vfs.MemFS) {
	h.t.Helper()
	_ = h.s.Close()
	_ = h.db.Close()
	h.fs, h.opts.FS, h.opts.hooks = disk, disk, nil
	h.db = openDBAt(h.t, h.fs, h.dir, h.fmv)
	h.open()
}

// TestReceiveCrash: a crash while a stream is received leaves nothing; a
// crash once it is received (its tables synced), after the restore marker,
// or after the ingest, leaves a store that restores it, or finishes the
// restore, on restart: the state is the snapshot's and no table is left.
func TestReceiveCrash(t *testing.T) {
	src := sourceStore(t)
	for range 40 { // ahead of the member that receives it, as raft's snapshots are
		src.put("ahead", "x")
	}
	_, stream := writeSnapshot(t, src)
	index, term := trailerOf(stream)
	for _, at := range []string{"receiving", "received", stepTablesWritten, stepIngested} {
		t.Run(at, func(t *testing.T) {
			var dst *harness
			var disk *vfs.MemFS
			dst = crashHarness(t, Options{hooks: &testHooks{restoreTableBytes: 512, restoreStep: func(step string) error {
				if step == at {
					disk = dst.crashClone()
					return errInjected
				}
				return nil
			}}})
			oldState(t, dst)
			if err := dst.db.LogData(nil, pebble.Sync); err != nil {
				t.Fatal(err)
			}
			if at == "receiving" {
				old := stateDump(t, dst.db)
				crashing := io.MultiReader(bytes.NewReader(stream[:len(stream)-3]), readerFunc(func([]byte) (int, error) {
					disk = dst.crashClone()
					return 0, errInjected
				}))
				if err := dst.s.ReceiveSnapshot(index, term, crashing); !errors.Is(err, errInjected) {
					t.Fatalf("a stream cut by a crash: %v", err)
				}
				dst.restartOn(disk)
				if left := ingestEntries(t, dst); len(left) != 0 || stateDump(t, dst.db) != old {
					t.Fatalf("a crash while receiving left %v, state changed: %v", left, stateDump(t, dst.db) != old)
				}
				return
			}
			if err := dst.s.ReceiveSnapshot(index, term, bytes.NewReader(stream)); err != nil {
				t.Fatal(err)
			}
			if at == "received" {
				dst.restartOn(dst.crashClone())
			}
			err := dst.s.Restore(index, term)
			if at == "received" && err != nil || at != "received" && !errors.Is(err, errInjected) {
				t.Fatalf("Restore: %v", err)
			}
			if at != "received" {
				dst.restartOn(disk) // Open finishes the restore
			}
			restoredFrom(t, src, dst)
		})
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }
