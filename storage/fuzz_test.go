package storage

import (
	"errors"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/record"
)

// sealedEntry returns the stored form of e.
func sealedEntry(e *raftpb.Entry) []byte {
	p, err := proto.Marshal(e)
	if err != nil {
		panic(err)
	}
	return record.Seal(nil, logKey(e.GetIndex()), p)
}

// FuzzDecodeEntry: decoding a stored entry record never panics, fails only
// with record.ErrCorrupt, and whatever it accepts re-encodes to a record that
// decodes to the same entry.
func FuzzDecodeEntry(f *testing.F) {
	for _, e := range []*raftpb.Entry{ent(1, 1), ent(4, 2), {Index: proto.Uint64(7)}} {
		v := sealedEntry(e)
		f.Add(e.GetIndex(), v)
		f.Add(e.GetIndex()+1, v)
		f.Add(e.GetIndex(), v[:len(v)-1])
	}
	f.Add(uint64(1), []byte{})
	f.Add(uint64(1), record.Seal(nil, logKey(1), []byte{0xff, 0xff}))
	f.Fuzz(func(t *testing.T, index uint64, value []byte) {
		e, err := decodeEntry(logKey(index), value)
		if err != nil {
			if !errors.Is(err, record.ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if e.GetIndex() != index {
			t.Fatalf("accepted an entry with index %d under key %d", e.GetIndex(), index)
		}
		again, err := decodeEntry(logKey(index), sealedEntry(e))
		if err != nil || !proto.Equal(e, again) {
			t.Fatalf("re-encoded %v decodes to %v, %v", e, again, err)
		}
	})
}

// FuzzOpen stores arbitrary bytes under the keys storage owns, then opens the
// store and reads everything it claims to hold. Nothing may panic; every error
// must be record.ErrCorrupt (or raft.ErrUnavailable for an empty log).
func FuzzOpen(f *testing.F) {
	valid := func(e *raftpb.Entry) []byte { return sealedEntry(e) }
	hs, _ := proto.Marshal(mkHS(1, 1, 1))
	snap, _ := proto.Marshal(snapshot(0, 0, confState(1)).GetMetadata())
	f.Add(valid(ent(1, 1)), valid(ent(2, 1)), valid(ent(3, 1)),
		record.Seal(nil, keyHardState, hs), record.Seal(nil, keySnapshot, snap), []byte(nil))
	f.Add([]byte(nil), valid(ent(2, 1)), valid(ent(3, 1)), []byte(nil), []byte(nil),
		record.Seal(nil, keyTruncated, encodeTruncated(1, 1)))
	f.Add(valid(ent(1, 1)), []byte(nil), valid(ent(3, 1)), []byte{1, 2, 3, 4, 5}, []byte(nil), []byte{0})
	f.Fuzz(func(t *testing.T, e1, e2, e3, hsv, snapv, truncv []byte) {
		db := memDB(t)
		b := db.NewBatch()
		for k, v := range map[string][]byte{
			string(logKey(1)): e1, string(logKey(2)): e2, string(logKey(3)): e3,
			string(keyHardState): hsv, string(keySnapshot): snapv, string(keyTruncated): truncv,
		} {
			if v != nil {
				_ = b.Set([]byte(k), v, nil)
			}
		}
		if err := b.Commit(pebble.NoSync); err != nil {
			t.Fatal(err)
		}
		s, err := Open(db)
		if err != nil {
			if !errors.Is(err, record.ErrCorrupt) {
				t.Fatalf("Open: %v does not wrap ErrCorrupt", err)
			}
			return
		}
		first, _ := s.FirstIndex()
		last, _ := s.LastIndex()
		if _, err := s.Entries(first, last+1, ^uint64(0)); err != nil &&
			!errors.Is(err, record.ErrCorrupt) && !(last < first && errors.Is(err, raft.ErrUnavailable)) {
			t.Fatalf("Entries(%d, %d): %v", first, last+1, err)
		}
		for i := first - 1; i <= last && i-first < 4; i++ {
			if _, err := s.Term(i); err != nil && !errors.Is(err, record.ErrCorrupt) {
				t.Fatalf("Term(%d): %v", i, err)
			}
		}
		_, _, _ = s.InitialState()
		_, _ = s.Snapshot()
	})
}
