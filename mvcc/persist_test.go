package mvcc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/synod-db/synod/record"
)

func TestReopen(t *testing.T) {
	h := newHarness(t, Options{})
	compactHistory(h)
	res := h.compact(9)
	waitClosed(t, res.Compacted, "compaction")
	h.put("f", "1")
	rec := recordReads(h, 9)
	idx, _ := h.s.Applied()
	h.reopen()
	if h.s.Rev() != 15 || h.s.CompactRev() != 9 {
		t.Fatalf("after reopen rev %d compact %d, want 15 9", h.s.Rev(), h.s.CompactRev())
	}
	if i, tm := h.s.Applied(); i != idx || tm != 1 {
		t.Fatalf("applied (%d,%d), want (%d,1)", i, tm, idx)
	}
	rec.check(h, "after reopen")
	if got := h.put("g", "1").Header.Revision; got != 16 {
		t.Fatalf("next put at %d, want 16", got)
	}
}

// TestApplyIgnoresAppliedEntries: an entry at or below the applied index
// (redelivered after a restart) changes nothing.
func TestApplyIgnoresAppliedEntries(t *testing.T) {
	h := newHarness(t, Options{})
	h.put("a", "1")
	hash := h.hash(0)
	res, err := h.s.Apply(h.idx, 1, &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte("a"), Value: []byte("2")}})
	if err != nil || res.Resp != nil || h.s.Rev() != 2 || h.hash(0) != hash {
		t.Fatalf("re-applied entry: %v %v rev %d", res, err, h.s.Rev())
	}
	if err := h.s.ApplyOther(h.idx, 1, func(b *pebble.Batch) error { return b.Set([]byte{0x20, 1}, []byte("x"), nil) }); err != nil {
		t.Fatal(err)
	}
	if _, c, err := h.db.Get([]byte{0x20, 1}); err == nil {
		c.Close()
		t.Fatal("ApplyOther of an applied entry wrote")
	}
}

// TestApplyAtomicWithCrash: apply batches are NoSync; a crash loses the
// unsynced tail as a whole (data and applied index together), and a synced
// write by the raft loop makes every earlier apply durable (one WAL).
func TestApplyAtomicWithCrash(t *testing.T) {
	fs := vfs.NewCrashableMem()
	db, err := pebble.Open("", &pebble.Options{FS: fs, Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	apply := func(i uint64) {
		if _, err := s.Apply(i, 3, &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte(fmt.Sprint("k", i)), Value: []byte("v")}}); err != nil {
			t.Fatal(err)
		}
	}
	for i := uint64(1); i <= 3; i++ {
		apply(i)
	}
	// The raft loop's synced write (e.g. HardState) carries the applies.
	if err := db.Set([]byte{0x02, 0x01}, []byte("hs"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	for i := uint64(4); i <= 6; i++ {
		apply(i)
	}
	_ = s.Close()
	synced := fs.CrashClone(vfs.CrashCloneCfg{}) // the disk after a power cut now
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	fs = synced

	db, err = pebble.Open("", &pebble.Options{FS: fs, Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err = Open(db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if i, tm := s.Applied(); i != 3 || tm != 3 || s.Rev() != 4 {
		t.Fatalf("after crash applied (%d,%d) rev %d, want (3,3) 4", i, tm, s.Rev())
	}
	resp, err := s.Range(t.Context(), &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
	if err != nil || keysOf(resp.Kvs) != "k1k2k3" {
		t.Fatalf("after crash: %v %v", resp, err)
	}
}

func TestApplyOther(t *testing.T) {
	h := newHarness(t, Options{})
	h.put("a", "1")
	if err := h.s.ApplyOther(2, 5, nil); err != nil {
		t.Fatal(err)
	}
	if i, tm := h.s.Applied(); i != 2 || tm != 5 || h.s.Rev() != 2 {
		t.Fatalf("applied (%d,%d) rev %d", i, tm, h.s.Rev())
	}
	member := []byte{0x20, 'm'}
	if err := h.s.ApplyOther(3, 5, func(b *pebble.Batch) error { return b.Set(member, []byte("x"), nil) }); err != nil {
		t.Fatal(err)
	}
	if v, c, err := h.db.Get(member); err != nil || string(v) != "x" {
		t.Fatalf("other write: %q %v", v, err)
	} else {
		c.Close()
	}
	for _, bad := range [][]byte{{0x01, 1}, {0x10, 'a'}, {0x12, 1}, {0x1f}} {
		err := h.s.ApplyOther(4, 5, func(b *pebble.Batch) error { return b.Set(bad, []byte("x"), nil) })
		wantErr(t, err, ErrForeignWrite)
	}
	err := h.s.ApplyOther(4, 5, func(b *pebble.Batch) error { return b.DeleteRange([]byte{0x11}, []byte{0x21}, nil) })
	wantErr(t, err, ErrForeignWrite)
	fnErr := errors.New("fn failed")
	wantErr(t, h.s.ApplyOther(4, 5, func(*pebble.Batch) error { return fnErr }), fnErr)
	if i, _ := h.s.Applied(); i != 3 {
		t.Fatalf("failed ApplyOther moved applied to %d", i)
	}
	_, err = h.s.Apply(4, 5, &pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{ID: 1}})
	wantErr(t, err, ErrUnknownRequest)
}

// flipStored flips one bit of the stored value under key.
func flipStored(t *testing.T, db *pebble.DB, key []byte, at int) {
	t.Helper()
	v, c, err := db.Get(key)
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	v = bytes.Clone(v)
	c.Close()
	v[at%len(v)] ^= 0x10
	if err := db.Set(key, v, pebble.NoSync); err != nil {
		t.Fatal(err)
	}
}

// TestCountedTagFlip: a tag damaged from one live state into the other is
// caught by its framing where only the tag is read (a count): a tombstone
// read as a put would count a deleted key, a put read as a tombstone would
// miss a live one.
func TestCountedTagFlip(t *testing.T) {
	h := newHarness(t, Options{})
	h.put("a", "1")
	h.put("gone", "x")
	h.del("gone", "")
	h.put("z", "1")
	for _, vk := range [][]byte{versionKey([]byte("gone"), 4), versionKey([]byte("z"), 5)} {
		v, c, err := h.db.Get(vk)
		if err != nil {
			t.Fatalf("get %q: %v", vk, err)
		}
		v = bytes.Clone(v)
		c.Close()
		v[record.HeaderSize] ^= tagPut ^ tagTombstone
		record.SealInPlace(vk, v) // only the tag is wrong: the checksum matches
		if err := h.db.Set(vk, v, pebble.NoSync); err != nil {
			t.Fatal(err)
		}
		resp, err := h.s.Range(t.Context(), &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte{0}, CountOnly: true})
		if !errors.Is(err, record.ErrCorrupt) || resp != nil {
			t.Fatalf("count with the tag of %q flipped: %v, %v; want ErrCorrupt", vk, resp, err)
		}
		v[record.HeaderSize] ^= tagPut ^ tagTombstone
		record.SealInPlace(vk, v)
		if err := h.db.Set(vk, v, pebble.NoSync); err != nil {
			t.Fatal(err)
		}
	}
	if resp := h.rng(&pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte{0}, CountOnly: true}); resp.Count != 2 {
		t.Fatalf("count after the repair: %d, want 2", resp.Count)
	}
}

func TestCorruptValue(t *testing.T) {
	for _, at := range []int{0, 4, 7, 1000} {
		t.Run(fmt.Sprint("byte", at), func(t *testing.T) {
			h := newHarness(t, Options{})
			h.put("a", "1")
			h.put("b", "1")
			h.put("secret", "value-never-served")
			h.put("z", "1")
			flipStored(t, h.db, versionKey([]byte("secret"), 4), at)
			for _, r := range []*pb.RangeRequest{
				{Key: []byte("secret")},
				{Key: []byte("a"), RangeEnd: []byte{0}},
				{Key: []byte("a"), RangeEnd: []byte{0}, KeysOnly: true},
			} {
				resp, err := h.s.Range(t.Context(), r)
				if !errors.Is(err, record.ErrCorrupt) || resp != nil {
					t.Fatalf("Range %v: %v, %v; want ErrCorrupt and no data", r, resp, err)
				}
			}
			// A version only counted is checked for its framing, not its
			// checksum (framedTag): the count is exact, or the damage is
			// reported when it hit the tag.
			for _, r := range []*pb.RangeRequest{
				{Key: []byte("a"), RangeEnd: []byte{0}, CountOnly: true},
				{Key: []byte("a"), RangeEnd: []byte{0}, Limit: 1}, // counted past the limit
			} {
				resp, err := h.s.Range(t.Context(), r)
				tagHit := at == record.HeaderSize
				if tagHit && (!errors.Is(err, record.ErrCorrupt) || resp != nil) {
					t.Fatalf("Range %v: %v, %v; want ErrCorrupt and no data", r, resp, err)
				}
				if !tagHit && (err != nil || resp.Count != 4 || len(resp.Kvs) > 1 || len(resp.Kvs) == 1 && string(resp.Kvs[0].Key) != "a") {
					t.Fatalf("Range %v: %v, %v; want a count of 4 and at most key a", r, resp, err)
				}
			}
			_, _, _, err := h.s.HashKV(0)
			wantErr(t, err, record.ErrCorrupt)
			_, err = h.s.Events(3, 0)
			wantErr(t, err, record.ErrCorrupt)
			_, err = h.s.ReadTxn(t.Context(), &pb.TxnRequest{Compare: []*pb.Compare{cmp("secret", "", pb.Compare_VERSION, pb.Compare_EQUAL, 1)}})
			wantErr(t, err, record.ErrCorrupt)
			// A write touching the key fails the member instead of guessing,
			// once it has to read the stored version: the generation cache
			// remembers the key's generation from its last write, so start
			// cold, as after a restart.
			h.s.gens.reset()
			_, err = h.s.Apply(h.idx+1, 1, &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte("secret"), Value: []byte("x")}})
			wantErr(t, err, record.ErrCorrupt)
			if i, _ := h.s.Applied(); i != h.idx {
				t.Fatal("a failed apply advanced the applied index")
			}
			// Other keys are still served.
			if kv := h.get("z"); kv == nil {
				t.Fatal("z not served")
			}
		})
	}
}

func TestCorruptMetaAndLog(t *testing.T) {
	h := newHarness(t, Options{})
	h.put("a", "1")
	flipStored(t, h.db, logKey(2, 0), 5)
	_, err := h.s.Events(1, 0)
	wantErr(t, err, record.ErrCorrupt)
	flipStored(t, h.db, metaRev, 5)
	_ = h.s.Close()
	_, err = Open(h.db, Options{})
	wantErr(t, err, record.ErrCorrupt)
	h.s = nil
}

// TestConcurrentReads: readers running during applies and compactions
// always see whole revisions: a and b are written together in each txn.
func TestConcurrentReads(t *testing.T) {
	h := newHarness(t, Options{CompactionBatch: 3})
	if _, err := h.txn(&pb.TxnRequest{Success: []*pb.RequestOp{putOp("a", "0"), putOp("b", "0")}}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := checkPair(h.s); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := 1; i <= 200; i++ {
		v := fmt.Sprint(i)
		if _, err := h.txn(&pb.TxnRequest{Success: []*pb.RequestOp{putOp("a", v), putOp("b", v)}}); err != nil {
			t.Fatal(err)
		}
		if i%20 == 0 {
			h.compact(h.s.Rev() - 5)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// checkPair reads a and b at the current revision and at a recent one.
func checkPair(s *Store) error {
	for _, back := range []int64{0, 3} {
		rev := int64(0)
		if back > 0 {
			if rev = s.Rev() - back; rev < 2 { // the pair exists from revision 2 on
				continue
			}
		}
		resp, err := s.Range(context.Background(), &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("c"), Revision: rev})
		if errors.Is(err, ErrCompacted) {
			continue
		}
		if err != nil {
			return err
		}
		if len(resp.Kvs) != 2 || !bytes.Equal(resp.Kvs[0].Value, resp.Kvs[1].Value) ||
			resp.Kvs[0].ModRevision != resp.Kvs[1].ModRevision {
			return fmt.Errorf("torn read at %d: %v", rev, resp.Kvs)
		}
	}
	return nil
}
