package storage

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// readErrors makes a block that fails its checksum an error of the read
// that found it, as the server's options do, instead of Pebble v2's
// default (Fatalf).
func readErrors() *pebble.EventListener {
	return &pebble.EventListener{DataCorruption: func(pebble.DataCorruptionInfo) {}}
}

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)         {}
func (quietLogger) Errorf(string, ...any)        {}
func (quietLogger) Fatalf(f string, args ...any) { panic(fmt.Sprintf(f, args...)) }

// openDB opens (or reopens) the Pebble database "db" on fs. It creates the
// directory durably first: Pebble does not sync the parent of its data
// directory, and a strict filesystem would forget it in a crash.
func openDB(t testing.TB, fs vfs.FS) *pebble.DB {
	t.Helper()
	if err := fs.MkdirAll("db", 0o755); err != nil {
		t.Fatal(err)
	}
	root, err := fs.OpenDir("")
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(root.Sync(), root.Close()); err != nil {
		t.Fatal(err)
	}
	db, err := pebble.Open("db", &pebble.Options{FS: fs, Logger: quietLogger{}, EventListener: readErrors()})
	if err != nil {
		t.Fatalf("pebble.Open: %v", err)
	}
	return db
}

// memDB returns a fresh in-memory database closed at the end of the test.
func memDB(t testing.TB) *pebble.DB {
	t.Helper()
	db := openDB(t, vfs.NewMem())
	t.Cleanup(func() { db.Close() })
	return db
}

func mustOpen(t testing.TB, db *pebble.DB) *LogStore {
	t.Helper()
	s, err := Open(db)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// ent returns an entry whose payload size varies with the index, so maxSize
// limits cut at different places.
func ent(index, term uint64) *raftpb.Entry {
	data := []byte(strings.Repeat(fmt.Sprintf("%d.%d|", index, term), int(index%5)+1))
	e := &raftpb.Entry{Index: proto.Uint64(index), Term: proto.Uint64(term), Data: data}
	if index%4 == 0 {
		e.Type = raftpb.EntryConfChange.Enum()
	}
	return e
}

// ents returns entries [lo, hi] of the given term.
func ents(lo, hi, term uint64) []*raftpb.Entry {
	var out []*raftpb.Entry
	for i := lo; i <= hi; i++ {
		out = append(out, ent(i, term))
	}
	return out
}

func mkHS(term, vote, commit uint64) *raftpb.HardState {
	return &raftpb.HardState{Term: proto.Uint64(term), Vote: proto.Uint64(vote), Commit: proto.Uint64(commit)}
}

func confState(voters ...uint64) *raftpb.ConfState {
	return &raftpb.ConfState{Voters: voters}
}

func snapshot(index, term uint64, cs *raftpb.ConfState) *raftpb.Snapshot {
	return &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{
		Index: proto.Uint64(index), Term: proto.Uint64(term), ConfState: cs,
	}}
}

// sameErr reports whether got is (or wraps) want, nil matching only nil.
func sameErr(want, got error) bool {
	if want == nil || got == nil {
		return want == got
	}
	return errors.Is(got, want)
}

// normSnap returns a copy of snap with every field present, so snapshots
// that differ only in proto2 field presence compare equal.
func normSnap(snap *raftpb.Snapshot) *raftpb.Snapshot {
	if snap == nil {
		return nil
	}
	return raftpb.EnsureSnapshot(proto.Clone(snap).(*raftpb.Snapshot))
}

// describeStorage renders everything observable through raft.Storage, failing
// the test on any error reading the entries (a hole, a corrupt record).
func describeStorage(t testing.TB, s raft.Storage) string {
	t.Helper()
	var b strings.Builder
	hs, cs, err := s.InitialState()
	if err != nil {
		t.Fatalf("InitialState: %v", err)
	}
	fmt.Fprintf(&b, "hs=%d/%d/%d cs=%v\n", hs.GetTerm(), hs.GetVote(), hs.GetCommit(), raftpb.EnsureConfState(proto.Clone(cs).(*raftpb.ConfState)))
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	snap, _ := s.Snapshot()
	dummy, err := s.Term(first - 1)
	if err != nil {
		t.Fatalf("Term(%d): %v", first-1, err)
	}
	fmt.Fprintf(&b, "first=%d last=%d dummyterm=%d snap=%v\n", first, last, dummy, normSnap(snap).GetMetadata())
	if last < first {
		return b.String()
	}
	es, err := s.Entries(first, last+1, ^uint64(0))
	if err != nil {
		t.Fatalf("Entries(%d, %d): %v", first, last+1, err)
	}
	for k, e := range es {
		if e.GetIndex() != first+uint64(k) {
			t.Fatalf("Entries(%d, %d): position %d holds index %d", first, last+1, k, e.GetIndex())
		}
		fmt.Fprintf(&b, "%d/%d/%v/%q\n", e.GetIndex(), e.GetTerm(), e.GetType(), e.GetData())
	}
	return b.String()
}
