package storage

import (
	"errors"
	"math/rand/v2"
	"sync"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// TestTailCacheModel drives the ring through random operations and checks it
// against a plain slice holding the same bounded suffix.
func TestTailCacheModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const maxN, maxBytes = 7, 60
	c := newTailCache(maxN, maxBytes)
	var model []cachedEntry // contiguous, oldest first
	next := uint64(1)
	for step := 0; step < 20000; step++ {
		switch r := rng.IntN(10); {
		case r < 6: // push, usually contiguous
			idx := next
			if rng.IntN(10) == 0 {
				idx = next + uint64(rng.IntN(3))
			}
			e := cachedEntry{e: &raftpb.Entry{Index: proto.Uint64(idx)}, size: uint64(rng.IntN(25))}
			if len(model) > 0 && idx != model[len(model)-1].e.GetIndex()+1 {
				model = nil
			}
			model = append(model, e)
			var bytes uint64
			for _, m := range model {
				bytes += m.size
			}
			for len(model) > 0 && (len(model) > maxN || bytes > maxBytes) {
				bytes -= model[0].size
				model = model[1:]
			}
			c.push(e.e, e.size)
			next = idx + 1
		case r < 8:
			i := next - uint64(rng.IntN(5))
			for len(model) > 0 && model[len(model)-1].e.GetIndex() >= i {
				model = model[:len(model)-1]
			}
			c.truncateFrom(i)
			next = i
		case r < 9:
			i := next - uint64(rng.IntN(8))
			for len(model) > 0 && model[0].e.GetIndex() < i {
				model = model[1:]
			}
			c.dropBefore(i)
		default:
			if rng.IntN(5) == 0 {
				model = nil
				c.reset()
			}
		}
		checkCache(t, step, c, model, next)
	}
}

func checkCache(t *testing.T, step int, c *tailCache, model []cachedEntry, next uint64) {
	t.Helper()
	lo, ok := c.lowest()
	if ok != (len(model) > 0) || c.n != len(model) || (ok && lo != model[0].e.GetIndex()) {
		t.Fatalf("step %d: cache holds %d from %d (%v), model %d", step, c.n, lo, ok, len(model))
	}
	var bytes uint64
	for _, m := range model {
		bytes += m.size
	}
	if c.bytes != bytes {
		t.Fatalf("step %d: cache bytes %d, model %d", step, c.bytes, bytes)
	}
	for i := next - 10; i < next+2; i++ {
		got, ok := c.get(i)
		var want cachedEntry
		if len(model) > 0 && i >= model[0].e.GetIndex() && i < model[0].e.GetIndex()+uint64(len(model)) {
			want = model[i-model[0].e.GetIndex()]
		}
		if ok != (want.e != nil) || got != want {
			t.Fatalf("step %d: get(%d) = %v, %v; want %v", step, i, got, ok, want)
		}
	}
}

// TestRecentEntriesNeverTouchPebble: the leader's reads right after Save are
// served from memory.
func TestRecentEntriesNeverTouchPebble(t *testing.T) {
	s := mustOpen(t, memDB(t))
	for lo := uint64(1); lo < 200; lo += 16 {
		if err := s.Save(mkHS(1, 1, lo), ents(lo, lo+15, 1), false); err != nil {
			t.Fatal(err)
		}
		got, err := s.Entries(lo, lo+16, ^uint64(0))
		if err != nil || len(got) != 16 {
			t.Fatalf("Entries(%d, %d) = %d, %v", lo, lo+16, len(got), err)
		}
		for i := lo - 1; i < lo+16; i++ {
			if _, err := s.Term(i); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := s.diskReads.Load(); n != 0 {
		t.Fatalf("%d reads went to Pebble, want 0", n)
	}
	if _, err := mustOpen(t, s.db).Entries(1, 2, 0); err != nil {
		t.Fatal(err)
	}
}

// TestTailCacheAcrossOverwriteAndCompaction runs a store with a 4-entry cache
// through conflicting overwrites, compaction and snapshots, checking results
// against MemoryStorage, which reads come from memory, and that slices
// returned earlier are never changed.
func TestTailCacheAcrossOverwriteAndCompaction(t *testing.T) {
	db := memDB(t)
	s, err := open(db, 4, 1<<10)
	if err != nil {
		t.Fatal(err)
	}
	ms := raft.NewMemoryStorage()
	do := func(o op) {
		t.Helper()
		if _, err := o.mem(ms); err != nil {
			t.Fatal(err)
		}
		if _, err := o.log(s); err != nil {
			t.Fatalf("%s: %v", o.desc, err)
		}
		compareStores(t, o.desc, ms, s)
		if lo, ok := s.cache.lowest(); ok && (lo <= s.offset || lo+uint64(s.cache.n)-1 != s.last) {
			t.Fatalf("%s: cache holds [%d, %d], log is (%d, %d]", o.desc, lo, lo+uint64(s.cache.n)-1, s.offset, s.last)
		}
	}
	// reads checks Entries(lo, hi) against MemoryStorage and whether it went
	// to Pebble.
	reads := func(lo, hi uint64, wantDisk bool) []*raftpb.Entry {
		t.Helper()
		before := s.diskReads.Load()
		compareEntries(t, "reads", ms, s, lo, hi, ^uint64(0))
		got, _ := s.Entries(lo, hi, ^uint64(0))
		if disk := s.diskReads.Load() != before; disk != wantDisk {
			t.Fatalf("Entries(%d, %d): went to Pebble %v, want %v (cache from %d, %d entries)", lo, hi, disk, wantDisk, s.cache.first, s.cache.n)
		}
		return got
	}
	do(save(nil, ents(1, 10, 1)))
	old := reads(7, 11, false)
	oldCopy := append([]*raftpb.Entry(nil), old...)
	reads(6, 11, true)

	do(save(nil, ents(8, 9, 2))) // conflict inside the cache: 10 goes away
	reads(7, 10, false)
	if last, _ := s.LastIndex(); last != 9 {
		t.Fatalf("LastIndex = %d, want 9", last)
	}
	do(save(nil, ents(3, 5, 3))) // conflict below the cache
	if got := reads(3, 6, false); got[0].GetTerm() != 3 {
		t.Fatalf("entry 3 has term %d after overwrite", got[0].GetTerm())
	}
	for k := range old {
		if old[k] != oldCopy[k] || old[k].GetTerm() != 1 {
			t.Fatalf("slice returned before the overwrite changed at %d: %v", k, old[k])
		}
	}
	// The caller may append to what it gets.
	got := reads(3, 5, false)
	_ = append(got, ent(99, 9))
	reads(3, 6, false)

	do(save(nil, ents(6, 8, 3)))
	do(compact(5, nil)) // drops cached 5
	reads(6, 9, false)
	do(createSnap(7, confState(1), nil))
	do(compact(7, nil))
	reads(8, 9, false)

	big := &raftpb.Entry{Index: proto.Uint64(9), Term: proto.Uint64(3), Data: make([]byte, 2<<10)}
	do(save(nil, []*raftpb.Entry{big})) // larger than the cache: not kept
	reads(8, 10, true)
	do(save(nil, ents(10, 11, 3)))
	reads(10, 12, false)

	do(applySnap(20, 4, confState(1, 2), nil))
	if s.cache.n != 0 {
		t.Fatalf("cache holds %d entries after ApplySnapshot", s.cache.n)
	}
	do(save(nil, ents(21, 22, 4)))
	reads(21, 23, false)
}

// TestConcurrentReaders runs readers against a writer that appends,
// overwrites, snapshots and compacts (meaningful under -race). Every result
// must be self-consistent and every error one raft expects.
func TestConcurrentReaders(t *testing.T) {
	s := mustOpen(t, memDB(t))
	if err := s.Save(mkHS(1, 1, 0), ents(1, 10, 1), false); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	errc := make(chan error, 3)
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				if err := readOnce(s); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	for term := uint64(2); term < 300; term++ {
		last, _ := s.LastIndex()
		if err := s.Save(mkHS(term, 1, last), ents(last-2, last+5, term), term%2 == 0); err != nil {
			t.Fatal(err)
		}
		if term%10 == 0 {
			if _, err := s.CreateSnapshot(last-5, confState(1)); err != nil {
				t.Fatal(err)
			}
			if err := s.Compact(last - 8); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(done)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
}

func readOnce(s *LogStore) error {
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	got, err := s.Entries(first, last+1, 200)
	switch {
	case errors.Is(err, raft.ErrCompacted), errors.Is(err, ErrOutOfBounds):
	case err != nil:
		return err
	default:
		for k, e := range got {
			if e.GetIndex() != first+uint64(k) {
				return errors.New("non-contiguous Entries result")
			}
		}
	}
	if _, err := s.Term(last); err != nil && !errors.Is(err, raft.ErrCompacted) && !errors.Is(err, raft.ErrUnavailable) {
		return err
	}
	if _, err := s.Snapshot(); err != nil {
		return err
	}
	_, _, err = s.InitialState()
	return err
}
