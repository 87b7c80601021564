package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/internal/durable"
	"github.com/synod-db/synod/storage"
)

// oldLayout writes, on a crash-safe in-memory disk, a data directory made
// before the raft log had a database of its own: the log (entries 6-40
// behind a snapshot at 10, truncated to 5) inside the state database,
// with the member's identity and a state key next to it. Everything is
// synced; the disk is returned as a crash would leave it.
func oldLayout(t *testing.T, walDir string) *vfs.MemFS {
	t.Helper()
	fs := vfs.NewCrashableMem()
	for _, d := range []string{"/data", "/data/db", "/wal"} {
		if err := fs.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"/", "/data"} {
		if err := durable.SyncDir(fs, d); err != nil {
			t.Fatal(err)
		}
	}
	o := pebbleOptions()
	o.FS, o.WALDir = fs, walDir
	defer o.Cache.Unref()
	db, err := pebble.Open("/data/db", o)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := storage.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	var ents []*raftpb.Entry
	for i := uint64(1); i <= 40; i++ {
		ents = append(ents, &raftpb.Entry{Index: proto.Uint64(i), Term: proto.Uint64(2), Data: bytes.Repeat([]byte{byte(i)}, 100)})
	}
	hs := &raftpb.HardState{Term: proto.Uint64(2), Vote: proto.Uint64(7), Commit: proto.Uint64(30)}
	steps := []error{
		ls.Save(hs, ents, true),
		func() error {
			_, err := ls.CreateSnapshot(10, &raftpb.ConfState{Voters: []uint64{7, 8, 9}})
			return err
		}(),
		ls.Compact(5),
		writeIdentity(db, identity{memberID: 7, clusterID: 99}),
		db.Set([]byte{0x10, 'k'}, []byte("state"), pebble.Sync),
		db.Close(),
	}
	if err := errors.Join(steps...); err != nil {
		t.Fatal(err)
	}
	return fs.CrashClone(vfs.CrashCloneCfg{})
}

// checkNewLayout opens the data directory on fs as a member does and
// checks that the raft log is whole in its own database and gone from the
// state's, whose own keys are intact.
func checkNewLayout(t *testing.T, fs vfs.FS, walDir string, logged *bytes.Buffer) {
	t.Helper()
	cfg := &Config{DataDir: "/data", WALDir: walDir, FS: fs}
	log := slog.New(slog.NewTextHandler(logged, nil))
	state, _, err := openMemberDB(cfg, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer state.Close()
	logDB, err := openLogDB(cfg, state, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer logDB.Close()
	if in, err := storage.HasLog(state); in || err != nil {
		t.Fatalf("log keys left in the state database: %v, %v", in, err)
	}
	if id, err := readIdentity(state); err != nil || id.memberID != 7 {
		t.Fatalf("identity %+v, %v", id, err)
	}
	if v, closer, err := state.Get([]byte{0x10, 'k'}); err != nil || string(v) != "state" {
		t.Fatalf("state key: %q, %v", v, err)
	} else {
		closer.Close()
	}
	ls, err := storage.Open(logDB)
	if err != nil {
		t.Fatal(err)
	}
	hs, cs, err := ls.InitialState()
	if err != nil || hs.GetCommit() != 30 || hs.GetVote() != 7 || len(cs.GetVoters()) != 3 {
		t.Fatalf("initial state %v %v, %v", hs, cs, err)
	}
	first, _ := ls.FirstIndex()
	last, _ := ls.LastIndex()
	snap, _ := ls.Snapshot()
	if first != 6 || last != 40 || snap.GetMetadata().GetIndex() != 10 {
		t.Fatalf("log [%d, %d], snapshot %d; want [6, 40], 10", first, last, snap.GetMetadata().GetIndex())
	}
	ents, err := ls.Entries(6, 41, 1<<30)
	if err != nil || len(ents) != 35 {
		t.Fatalf("%d entries, %v", len(ents), err)
	}
	for _, e := range ents {
		if !bytes.Equal(e.GetData(), bytes.Repeat([]byte{byte(e.GetIndex())}, 100)) {
			t.Fatalf("entry %d holds %x", e.GetIndex(), e.GetData())
		}
	}
}

// A data directory whose raft log is still in the state database is
// moved to the new layout at the first open, said once in the log; the
// next open finds nothing to move. With --wal-dir, the log's database is
// made there and the state's WAL stays there.
func TestMoveLogOut(t *testing.T) {
	for _, walDir := range []string{"", "/wal"} {
		fs := oldLayout(t, walDir)
		var logged bytes.Buffer
		checkNewLayout(t, fs, walDir, &logged)
		if n := strings.Count(logged.String(), "moved the raft log"); n != 1 {
			t.Fatalf("wal-dir %q: moved %d times:\n%s", walDir, n, logged.String())
		}
		want := "/data/raftlog"
		if walDir != "" {
			want = "/wal/raftlog"
		}
		if _, err := fs.Stat(want); err != nil {
			t.Fatalf("wal-dir %q: no raft log database at %s: %v", walDir, want, err)
		}
		logged.Reset()
		checkNewLayout(t, fs, walDir, &logged)
		if strings.Contains(logged.String(), "moved the raft log") {
			t.Fatalf("wal-dir %q: moved again:\n%s", walDir, logged.String())
		}
	}
}

// A crash at any point of the move (before any file operation or sync of
// either database, losing every unsynced write) leaves a data directory
// that the next open moves, or finishes moving, to the same result.
func TestMoveLogOutInterrupted(t *testing.T) {
	base := oldLayout(t, "")
	count := &crashFS{FS: base.CrashClone(vfs.CrashCloneCfg{}), at: -1}
	checkNewLayout(t, count, "", new(bytes.Buffer))
	total := int(count.n.Load())
	if total < 10 {
		t.Fatalf("the move made only %d file operations", total)
	}
	for at := 1; at <= total; at++ {
		mem := base.CrashClone(vfs.CrashCloneCfg{})
		fs := &crashFS{FS: mem, mem: mem, at: int64(at)}
		checkNewLayout(t, fs, "", new(bytes.Buffer))
		if fs.crashed == nil {
			t.Fatalf("no crash at operation %d of %d", at, total)
		}
		var logged bytes.Buffer
		checkNewLayout(t, fs.crashed, "", &logged)
		if _, err := fs.crashed.Stat("/data/raftlog.tmp"); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("crash at operation %d: the temporary copy is left: %v", at, err)
		}
	}
}

// crashFS counts the operations that change what a crash keeps (creating,
// renaming and removing files and directories, syncing files) and, at
// operation at, takes the copy of mem that a crash just before it would
// leave.
type crashFS struct {
	vfs.FS
	mem     *vfs.MemFS
	at      int64
	n       atomic.Int64
	crashed *vfs.MemFS
}

func (c *crashFS) op() {
	if c.n.Add(1) == c.at {
		c.crashed = c.mem.CrashClone(vfs.CrashCloneCfg{})
	}
}

func (c *crashFS) file(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return crashFile{File: f, fs: c}, nil
}

func (c *crashFS) Create(name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	c.op()
	return c.file(c.FS.Create(name, cat))
}

func (c *crashFS) OpenReadWrite(name string, cat vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	return c.file(c.FS.OpenReadWrite(name, cat, opts...))
}

func (c *crashFS) OpenDir(name string) (vfs.File, error) { return c.file(c.FS.OpenDir(name)) }

func (c *crashFS) ReuseForWrite(oldname, newname string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	c.op()
	return c.file(c.FS.ReuseForWrite(oldname, newname, cat))
}

func (c *crashFS) Link(oldname, newname string) error { c.op(); return c.FS.Link(oldname, newname) }
func (c *crashFS) Remove(name string) error           { c.op(); return c.FS.Remove(name) }
func (c *crashFS) RemoveAll(name string) error        { c.op(); return c.FS.RemoveAll(name) }
func (c *crashFS) Rename(oldname, newname string) error {
	c.op()
	return c.FS.Rename(oldname, newname)
}
func (c *crashFS) MkdirAll(dir string, perm os.FileMode) error {
	c.op()
	return c.FS.MkdirAll(dir, perm)
}

// crashFile counts its syncs as operations of fs.
type crashFile struct {
	vfs.File
	fs *crashFS
}

func (f crashFile) Sync() error     { f.fs.op(); return f.File.Sync() }
func (f crashFile) SyncData() error { f.fs.op(); return f.File.SyncData() }
func (f crashFile) SyncTo(n int64) (bool, error) {
	f.fs.op()
	return f.File.SyncTo(n)
}

// A member whose state exists but whose raft log's database is not where
// this start looks (removed, or a data directory started with another
// --wal-dir than it was made with) is refused with ErrLogMissing, naming
// the other place when the log is there, instead of starting on an empty
// log as if restored.
func TestLogDirMissing(t *testing.T) {
	for _, walDir := range []string{"", "/wal"} {
		fs := oldLayout(t, walDir)
		checkNewLayout(t, fs, walDir, &bytes.Buffer{})
		cfg := &Config{DataDir: "/data", WALDir: walDir, FS: fs}
		var err error
		if walDir == "" {
			err = fs.RemoveAll("/data/raftlog")
		} else {
			err = fs.Rename("/wal/raftlog", "/data/raftlog") // as a restore without --wal-dir leaves it
		}
		if err != nil {
			t.Fatal(err)
		}
		log := slog.New(slog.DiscardHandler)
		state, _, err := openMemberDB(cfg, log, nil)
		if err != nil {
			t.Fatal(err)
		}
		logDB, err := openLogDB(cfg, state, log, nil)
		if err == nil {
			logDB.Close()
		}
		state.Close()
		if !errors.Is(err, ErrLogMissing) {
			t.Fatalf("wal-dir %q: opening without the log: %v, want ErrLogMissing", walDir, err)
		}
		if walDir != "" && !strings.Contains(err.Error(), "it is in /data/raftlog") {
			t.Fatalf("wal-dir %q: %v, want the log's place named", walDir, err)
		}
	}
}

// A raft log database just created is flushed once (sealFirstWAL), so the
// WAL its entries are written to records its synced offsets and Pebble
// reports damage in the middle of that newest file at open, rather than
// reading it as a torn tail and dropping the synced records after it.
func TestNewLogDBWALDamageDetected(t *testing.T) {
	cfg := &Config{DataDir: t.TempDir()}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	state, _, err := openMemberDB(cfg, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	logDB, err := openLogDB(cfg, state, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 400 // ~200 KB of synced records, past several 32 KiB blocks
	for i := 0; i < n; i++ {
		if err := logDB.Set(fmt.Appendf(nil, "e%04d", i), bytes.Repeat([]byte{'v'}, 500), pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	if err := errors.Join(logDB.Close(), state.Close()); err != nil {
		t.Fatal(err)
	}
	dir := logDBDir(cfg)
	wal := newestWAL(t, dir)
	flipByteAt(t, wal, 0.4)
	o := logDBOptions()
	db, err := openWith(dir, o)
	if err == nil {
		kept := 0
		for i := 0; i < n; i++ {
			if _, c, err := db.Get(fmt.Appendf(nil, "e%04d", i)); err == nil {
				c.Close()
				kept++
			}
		}
		db.Close()
		t.Fatalf("damage 40%% into %s was read as a torn tail: the database opened with %d of %d synced records", wal, kept, n)
	}
}

// newestWAL is the path of the WAL file of dir with the highest number.
func newestWAL(t *testing.T, dir string) string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no WAL in %s: %v", dir, err)
	}
	sort.Strings(names)
	return names[len(names)-1]
}

// flipByteAt inverts the byte at the given fraction of path's size.
func flipByteAt(t *testing.T, path string, at float64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[int(float64(len(b))*at)] ^= 0xff
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
