package storage

import (
	"fmt"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// op is one mutation applied to both raft.MemoryStorage and LogStore.
type op struct {
	desc    string
	mem     func(*raft.MemoryStorage) (*raftpb.Snapshot, error)
	log     func(*LogStore) (*raftpb.Snapshot, error)
	wantErr error
}

// save mirrors Save on MemoryStorage: SetHardState (if non-empty) + Append.
func save(hs *raftpb.HardState, es []*raftpb.Entry) op {
	return op{
		desc: fmt.Sprintf("save(hs=%v, %d entries from %d)", hs, len(es), es0(es)),
		mem: func(ms *raft.MemoryStorage) (*raftpb.Snapshot, error) {
			if !raft.IsEmptyHardState(hs) {
				ms.SetHardState(hs)
			}
			return nil, ms.Append(es)
		},
		log: func(s *LogStore) (*raftpb.Snapshot, error) { return nil, s.Save(hs, es, true) },
	}
}

func es0(es []*raftpb.Entry) uint64 {
	if len(es) == 0 {
		return 0
	}
	return es[0].GetIndex()
}

func createSnap(i uint64, cs *raftpb.ConfState, wantErr error) op {
	return op{
		desc: fmt.Sprintf("createSnapshot(%d, %v)", i, cs),
		mem: func(ms *raft.MemoryStorage) (*raftpb.Snapshot, error) {
			snap, err := ms.CreateSnapshot(i, cs, nil)
			if err == nil {
				memRaiseCommit(ms, i)
			}
			return snap, err
		},
		log:     func(s *LogStore) (*raftpb.Snapshot, error) { return s.CreateSnapshot(i, cs) },
		wantErr: wantErr,
	}
}

func compact(i uint64, wantErr error) op {
	return op{
		desc: fmt.Sprintf("compact(%d)", i),
		mem: func(ms *raft.MemoryStorage) (*raftpb.Snapshot, error) {
			err := ms.Compact(i)
			if err == nil {
				memRaiseCommit(ms, i)
			}
			return nil, err
		},
		log:     func(s *LogStore) (*raftpb.Snapshot, error) { return nil, s.Compact(i) },
		wantErr: wantErr,
	}
}

func applySnap(i, term uint64, cs *raftpb.ConfState, wantErr error) op {
	return op{
		desc: fmt.Sprintf("applySnapshot(%d, %d, %v)", i, term, cs),
		mem: func(ms *raft.MemoryStorage) (*raftpb.Snapshot, error) {
			return nil, memApplySnapshot(ms, snapshot(i, term, cs))
		},
		log:     func(s *LogStore) (*raftpb.Snapshot, error) { return nil, s.ApplySnapshot(snapshot(i, term, cs)) },
		wantErr: wantErr,
	}
}

// memRaiseCommit is what LogStore adds to MemoryStorage's CreateSnapshot,
// Compact and ApplySnapshot: a stored HardState committing less than the
// snapshot or truncation index is raised to it (LogStore.raiseCommit).
func memRaiseCommit(ms *raft.MemoryStorage, index uint64) {
	hs, _, _ := ms.InitialState()
	if !raft.IsEmptyHardState(hs) && hs.GetCommit() < index {
		hs.Commit = proto.Uint64(index)
		ms.SetHardState(hs)
	}
}

// memApplySnapshot is MemoryStorage.ApplySnapshot plus what LogStore adds:
// a stored HardState's commit is raised to the snapshot index (see
// LogStore.ApplySnapshot).
func memApplySnapshot(ms *raft.MemoryStorage, snap *raftpb.Snapshot) error {
	if err := ms.ApplySnapshot(snap); err != nil {
		return err
	}
	memRaiseCommit(ms, snap.GetMetadata().GetIndex())
	return nil
}

var conformanceScenarios = []struct {
	name string
	ops  []op
}{
	{"empty", nil},
	{"append and overwrite conflicting suffixes", []op{
		save(mkHS(1, 1, 0), ents(1, 10, 1)),
		save(mkHS(2, 2, 5), ents(6, 8, 2)),          // drops 9, 10
		save(nil, ents(9, 12, 2)),                   // plain append
		save(nil, ents(3, 4, 3)),                    // drops 5..12
		save(mkHS(3, 0, 4), nil),                    // HardState only
		save(nil, append(ents(4, 4, 3), ent(5, 3))), // rewrites the last entry, appends
		save(&raftpb.HardState{}, ents(6, 6, 3)),    // empty HardState is not saved
	}},
	{"snapshot and compact", []op{
		save(mkHS(1, 1, 20), ents(1, 20, 1)),
		createSnap(10, confState(1, 2, 3), nil),
		compact(5, nil),
		compact(5, raft.ErrCompacted),
		compact(3, raft.ErrCompacted),
		createSnap(8, nil, raft.ErrSnapOutOfDate),
		createSnap(10, nil, raft.ErrSnapOutOfDate),
		compact(10, nil),
		save(nil, ents(5, 15, 2)), // compacted prefix ignored, conflict from 11
		save(nil, ents(1, 9, 9)),  // entirely compacted: no-op
		save(nil, ents(8, 10, 9)), // entirely compacted: no-op
		save(nil, ents(16, 22, 2)),
		createSnap(15, nil, nil), // keeps the ConfState
		createSnap(16, confState(1, 2), nil),
		compact(20, nil),
		save(nil, ents(21, 24, 5)), // overwrites 21, 22 right after the truncation point
		compact(24, nil),           // compacts everything but the dummy
		save(nil, ents(25, 26, 5)), // appends after a fully compacted log
	}},
	{"compact beyond the snapshot", []op{
		save(nil, ents(1, 10, 1)),
		compact(7, nil),
		createSnap(8, confState(1), nil),
		compact(8, nil),
	}},
	{"apply snapshot", []op{
		save(mkHS(1, 0, 3), ents(1, 5, 1)),
		applySnap(10, 3, confState(1, 2, 3), nil),
		save(mkHS(3, 0, 10), ents(11, 15, 3)),
		applySnap(8, 2, nil, raft.ErrSnapOutOfDate),
		applySnap(10, 3, nil, raft.ErrSnapOutOfDate),
		compact(12, nil),
		createSnap(13, nil, nil),
		applySnap(20, 4, &raftpb.ConfState{Voters: []uint64{1}, Learners: []uint64{4}}, nil),
		save(nil, ents(21, 21, 4)),
		applySnap(21, 4, nil, nil),
	}},
	{"bootstrap snapshot at index 0", []op{
		applySnap(0, 0, confState(1, 2, 3), nil),
		applySnap(0, 0, confState(1, 2, 3, 4), nil),
		save(mkHS(1, 0, 0), ents(1, 3, 1)),
		createSnap(2, nil, nil),
	}},
	{"apply snapshot below the truncation point", []op{
		save(nil, ents(1, 10, 1)),
		compact(7, nil),
		applySnap(3, 1, confState(1), nil),
		save(nil, ents(4, 5, 2)),
	}},
}

// TestConformance runs each scenario against raft.MemoryStorage and LogStore
// (with the default, a tiny and no tail cache) and compares every result and
// error after every step, both on the live store and on one freshly opened
// from the same database.
func TestConformance(t *testing.T) {
	caches := []struct {
		name    string
		entries int
		bytes   uint64
	}{{"default-cache", defaultCacheEntries, defaultCacheBytes}, {"tiny-cache", 3, 100}, {"no-cache", 0, 0}}
	for _, sc := range conformanceScenarios {
		for _, c := range caches {
			t.Run(sc.name+"/"+c.name, func(t *testing.T) {
				db := memDB(t)
				ls, err := open(db, c.entries, c.bytes)
				if err != nil {
					t.Fatal(err)
				}
				ms := raft.NewMemoryStorage()
				compareStores(t, "initial", ms, ls)
				for k, o := range sc.ops {
					step := fmt.Sprintf("step %d %s", k, o.desc)
					wantSnap, wantErr := o.mem(ms)
					gotSnap, gotErr := o.log(ls)
					if !sameErr(wantErr, gotErr) || !sameErr(o.wantErr, gotErr) {
						t.Fatalf("%s: error %v, MemoryStorage %v, table %v", step, gotErr, wantErr, o.wantErr)
					}
					if !proto.Equal(normSnap(wantSnap), normSnap(gotSnap)) {
						t.Fatalf("%s: returned %v, MemoryStorage %v", step, gotSnap, wantSnap)
					}
					compareStores(t, step, ms, ls)
					reopened, err := open(db, c.entries, c.bytes)
					if err != nil {
						t.Fatalf("%s: reopen: %v", step, err)
					}
					compareStores(t, step+" (reopened)", ms, reopened)
				}
			})
		}
	}
}

// compareStores compares every raft.Storage read of ls against ms.
func compareStores(t *testing.T, step string, ms *raft.MemoryStorage, ls *LogStore) {
	t.Helper()
	compareState(t, step, ms, ls)
	first, _ := ms.FirstIndex()
	last, _ := ms.LastIndex()
	for i := uint64(0); i <= last+2; i++ {
		wt, werr := ms.Term(i)
		gt, gerr := ls.Term(i)
		if wt != gt || !sameErr(werr, gerr) {
			t.Fatalf("%s: Term(%d) = %d, %v; MemoryStorage %d, %v", step, i, gt, gerr, wt, werr)
		}
	}
	sizes := []uint64{0, 1, 10, 40, 100, 1000, ^uint64(0)}
	for lo := first - 1; lo <= last+1; lo++ {
		for hi := lo; hi <= last+1; hi++ {
			for _, max := range sizes {
				compareEntries(t, step, ms, ls, lo, hi, max)
			}
		}
	}
}

func compareState(t *testing.T, step string, ms *raft.MemoryStorage, ls *LogStore) {
	t.Helper()
	whs, wcs, _ := ms.InitialState()
	ghs, gcs, err := ls.InitialState()
	if err != nil || (whs == nil) != (ghs == nil) || !raftHSEqual(whs, ghs) ||
		!proto.Equal(raftpb.EnsureConfState(proto.Clone(wcs).(*raftpb.ConfState)), raftpb.EnsureConfState(gcs)) {
		t.Fatalf("%s: InitialState = %v, %v, %v; MemoryStorage %v, %v", step, ghs, gcs, err, whs, wcs)
	}
	wf, _ := ms.FirstIndex()
	gf, _ := ls.FirstIndex()
	wl, _ := ms.LastIndex()
	gl, _ := ls.LastIndex()
	if wf != gf || wl != gl {
		t.Fatalf("%s: FirstIndex, LastIndex = %d, %d; MemoryStorage %d, %d", step, gf, gl, wf, wl)
	}
	wsnap, _ := ms.Snapshot()
	gsnap, err := ls.Snapshot()
	if err != nil || !proto.Equal(normSnap(wsnap), normSnap(gsnap)) {
		t.Fatalf("%s: Snapshot = %v, %v; MemoryStorage %v", step, gsnap, err, wsnap)
	}
}

func raftHSEqual(a, b *raftpb.HardState) bool {
	return a.GetTerm() == b.GetTerm() && a.GetVote() == b.GetVote() && a.GetCommit() == b.GetCommit()
}

func compareEntries(t *testing.T, step string, ms *raft.MemoryStorage, ls *LogStore, lo, hi, max uint64) {
	t.Helper()
	want, werr := ms.Entries(lo, hi, max)
	got, gerr := ls.Entries(lo, hi, max)
	if !sameErr(werr, gerr) || len(want) != len(got) {
		t.Fatalf("%s: Entries(%d, %d, %d) = %d entries, %v; MemoryStorage %d, %v", step, lo, hi, max, len(got), gerr, len(want), werr)
	}
	for k := range want {
		if !proto.Equal(want[k], got[k]) {
			t.Fatalf("%s: Entries(%d, %d, %d)[%d] = %v; MemoryStorage %v", step, lo, hi, max, k, got[k], want[k])
		}
	}
}
