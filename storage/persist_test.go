package storage

import (
	"errors"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// TestEmptyStore: a new store looks like a new MemoryStorage, and a log
// bootstrapped by saving entries from index 1 works.
func TestEmptyStore(t *testing.T) {
	s := mustOpen(t, memDB(t))
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	hs, cs, err := s.InitialState()
	if first != 1 || last != 0 || hs != nil || err != nil || len(cs.GetVoters()) != 0 {
		t.Fatalf("empty store: first %d last %d hs %v cs %v err %v", first, last, hs, cs, err)
	}
	if term, err := s.Term(0); term != 0 || err != nil {
		t.Fatalf("Term(0) = %d, %v", term, err)
	}
	if _, err := s.Entries(1, 1, 0); !errors.Is(err, raft.ErrUnavailable) {
		t.Fatalf("Entries(1, 1) = %v, want ErrUnavailable", err)
	}
	if err := s.Save(mkHS(1, 1, 0), ents(1, 3, 1), true); err != nil {
		t.Fatal(err)
	}
	got, err := s.Entries(1, 4, ^uint64(0))
	if err != nil || len(got) != 3 || got[0].GetIndex() != 1 {
		t.Fatalf("Entries(1, 4) = %v, %v", got, err)
	}
}

// TestOutOfBounds: where MemoryStorage panics, LogStore returns
// ErrOutOfBounds and changes nothing.
func TestOutOfBounds(t *testing.T) {
	db := memDB(t)
	s := mustOpen(t, db)
	if err := s.Save(mkHS(1, 0, 0), ents(1, 10, 1), false); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(3); err != nil {
		t.Fatal(err)
	}
	before := describeStorage(t, s)
	checks := map[string]func() error{
		"Entries past last": func() error { _, err := s.Entries(5, 12, 100); return err },
		"Entries lo > hi":   func() error { _, err := s.Entries(6, 5, 100); return err },
		"Compact past last": func() error { return s.Compact(11) },
		"Snapshot past last": func() error {
			_, err := s.CreateSnapshot(11, nil)
			return err
		},
		"Save with a gap":        func() error { return s.Save(mkHS(2, 0, 0), ents(12, 13, 1), false) },
		"Save not contiguous":    func() error { return s.Save(nil, append(ents(5, 6, 2), ent(8, 2)), false) },
		"Save not contiguous II": func() error { return s.Save(nil, append(ents(5, 6, 2), ent(6, 2)), false) },
	}
	for name, f := range checks {
		if err := f(); !errors.Is(err, ErrOutOfBounds) {
			t.Errorf("%s: %v, want ErrOutOfBounds", name, err)
		}
	}
	if _, err := s.CreateSnapshot(2, nil); !errors.Is(err, raft.ErrCompacted) {
		t.Errorf("CreateSnapshot below the truncation point: %v, want ErrCompacted", err)
	}
	if after := describeStorage(t, s); after != before {
		t.Fatalf("state changed:\n%s\nwant\n%s", after, before)
	}
	if after := describeStorage(t, mustOpen(t, db)); after != before {
		t.Fatalf("stored state changed:\n%s\nwant\n%s", after, before)
	}
}

// TestPersistence closes and reopens the database after each step and checks
// the reopened store equals a MemoryStorage given the same operations.
func TestPersistence(t *testing.T) {
	fs := vfs.NewMem()
	ms := raft.NewMemoryStorage()
	steps := []op{
		save(mkHS(1, 1, 0), ents(1, 30, 1)),
		save(mkHS(2, 2, 10), ents(25, 40, 2)),
		createSnap(20, confState(1, 2, 3), nil),
		compact(15, nil),
		save(nil, ents(41, 41, 2)),
		applySnap(50, 3, confState(1, 2, 3, 4), nil),
		save(mkHS(3, 1, 50), ents(51, 55, 3)),
	}
	for k, o := range steps {
		db := openDB(t, fs)
		s := mustOpen(t, db)
		step := fmt.Sprintf("step %d %s", k, o.desc)
		if _, err := o.mem(ms); err != nil {
			t.Fatal(err)
		}
		if _, err := o.log(s); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		db = openDB(t, fs)
		compareStores(t, step, ms, mustOpen(t, db))
		db.Close()
	}
}

// crashOp is a step of TestCrashKeepsSyncedWrites; sync reports whether it
// commits with fsync.
type crashOp struct {
	sync bool
	do   func(raft.Storage) error
}

func crashSave(hs *raftpb.HardState, es []*raftpb.Entry, sync bool) crashOp {
	return crashOp{sync, func(s raft.Storage) error {
		if ls, ok := s.(*LogStore); ok {
			return ls.Save(hs, es, sync)
		}
		ms := s.(*raft.MemoryStorage)
		if !raft.IsEmptyHardState(hs) {
			ms.SetHardState(hs)
		}
		return ms.Append(es)
	}}
}

func crashCompact(i uint64) crashOp {
	return crashOp{false, func(s raft.Storage) error {
		return s.(interface{ Compact(uint64) error }).Compact(i)
	}}
}

func crashApplySnap(i, term uint64) crashOp {
	return crashOp{true, func(s raft.Storage) error {
		if ms, ok := s.(*raft.MemoryStorage); ok {
			return memApplySnapshot(ms, snapshot(i, term, confState(1)))
		}
		return s.(*LogStore).ApplySnapshot(snapshot(i, term, confState(1)))
	}}
}

var crashOps = []crashOp{
	crashSave(mkHS(1, 1, 0), ents(1, 10, 1), true),
	crashSave(mkHS(1, 1, 5), ents(11, 15, 1), false),
	crashSave(nil, ents(16, 20, 1), true), // makes the previous step durable too
	crashSave(mkHS(2, 2, 10), ents(18, 25, 2), false),
	crashCompact(8),
	crashSave(nil, ents(26, 30, 2), false),
	crashSave(mkHS(3, 3, 12), ents(20, 22, 3), true),
	crashSave(nil, ents(23, 26, 3), false),
	crashSave(mkHS(4, 4, 20), ents(21, 21, 4), false),
	crashApplySnap(40, 5),
	crashSave(mkHS(5, 0, 40), ents(41, 45, 5), false),
	crashSave(nil, ents(43, 44, 6), false),
}

// TestCrashKeepsSyncedWrites runs every prefix of crashOps on a strict
// in-memory filesystem, crashes (dropping unsynced writes), reopens, and
// checks the recovered store equals the state after some prefix that includes
// every synced step, with no hole in the log.
func TestCrashKeepsSyncedWrites(t *testing.T) {
	// models[k] describes the state after the first k steps.
	ms := raft.NewMemoryStorage()
	models := []string{describeStorage(t, ms)}
	for _, o := range crashOps {
		if err := o.do(ms); err != nil {
			t.Fatal(err)
		}
		models = append(models, describeStorage(t, ms))
	}
	lost := 0 // prefixes whose unsynced steps the crash dropped
	for n := 1; n <= len(crashOps); n++ {
		fs := vfs.NewCrashableMem()
		db := openDB(t, fs)
		s := mustOpen(t, db)
		lastSynced := 0
		for k, o := range crashOps[:n] {
			if err := o.do(s); err != nil {
				t.Fatalf("prefix %d step %d: %v", n, k, err)
			}
			if o.sync {
				lastSynced = k + 1
			}
		}
		synced := fs.CrashClone(vfs.CrashCloneCfg{}) // the disk after a power cut now
		db.Close()
		fs = synced
		db = openDB(t, fs)
		got := describeStorage(t, mustOpen(t, db))
		db.Close()
		k := lastSynced
		for k <= n && models[k] != got {
			k++
		}
		if k > n {
			t.Fatalf("after %d steps (last synced %d) recovered\n%s\nwhich matches no state from step %d on; want\n%s",
				n, lastSynced, got, lastSynced, models[lastSynced])
		}
		if k < n {
			lost++
		}
	}
	if lost == 0 {
		t.Fatal("no crash dropped an unsynced step: the test does not simulate crashes")
	}
}

// TestRestartAfterSnapshotInstall: a follower installs a snapshot beyond its
// HardState's commit and crashes before the next Save (whose new commit
// index raft does not ask to sync). raft must be able to start from what
// the disk kept; before ApplySnapshot raised the stored commit, raft
// panicked ("state.commit 26 is out of range [42, 42]") and the member could
// never restart. Found by the deterministic simulation (seed 45).
func TestRestartAfterSnapshotInstall(t *testing.T) {
	fs := vfs.NewCrashableMem()
	db := openDB(t, fs)
	s := mustOpen(t, db)
	if err := s.Save(mkHS(2, 1, 26), ents(1, 30, 2), true); err != nil {
		t.Fatal(err)
	}
	if err := s.ApplySnapshot(snapshot(42, 3, confState(1, 2, 3))); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(mkHS(3, 1, 42), nil, false); err != nil { // lost in the crash
		t.Fatal(err)
	}
	synced := fs.CrashClone(vfs.CrashCloneCfg{}) // the disk after a power cut now
	db.Close()
	fs = synced
	db = openDB(t, fs)
	defer db.Close()
	s = mustOpen(t, db)
	hs, _, _ := s.InitialState()
	if hs.GetCommit() < 42 || hs.GetTerm() != 2 || hs.GetVote() != 1 {
		t.Fatalf("HardState after the crash %v, want term 2 vote 1 and commit >= 42", hs)
	}
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("raft cannot start from the recovered log: %v", r)
		}
	}()
	if _, err := raft.NewRawNode(&raft.Config{ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: s,
		Applied: 42, MaxInflightMsgs: 1, MaxSizePerMsg: 1 << 20}); err != nil {
		t.Fatal(err)
	}
}
