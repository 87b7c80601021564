package mvcc

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/record"
)

// etcdRecord is one record of etcd's key bucket, decoded.
type etcdRecord struct {
	main, sub int64
	tombstone bool
	kv        *mvccpb.KeyValue
}

// exportEtcd collects h's history as EtcdRecords gives it.
func exportEtcd(t *testing.T, h *harness) (recs []etcdRecord, rev, compactRev int64) {
	t.Helper()
	sn := h.s.NewSnapshot()
	defer sn.Close()
	rev, compactRev, err := sn.EtcdRecords(func(k, v []byte) error {
		kv := &mvccpb.KeyValue{}
		if err := proto.Unmarshal(v, kv); err != nil || (len(k) != 17 && len(k) != 18) || k[8] != '_' {
			t.Fatalf("record %x → %x: %v", k, v, err)
		}
		recs = append(recs, etcdRecord{int64(binary.BigEndian.Uint64(k)), int64(binary.BigEndian.Uint64(k[9:])), len(k) == 18, kv})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return recs, rev, compactRev
}

// importEtcd imports recs into a new store.
func importEtcd(t *testing.T, recs []etcdRecord, compactRev int64, opts ImportOptions) (*harness, ImportResult) {
	t.Helper()
	h := &harness{t: t, fs: vfs.NewMem()}
	h.db = openDB(t, h.fs)
	t.Cleanup(func() {
		if h.s != nil {
			_ = h.s.Close()
		}
		_ = h.db.Close()
	})
	e, err := NewEtcdImport(h.db)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for _, r := range recs {
		if err := e.Add(r.main, r.sub, r.tombstone, r.kv); err != nil {
			t.Fatal(err)
		}
	}
	res, err := e.Finish(compactRev, opts)
	if err != nil {
		t.Fatal(err)
	}
	h.open()
	return h, res
}

// TestEtcdRecordsRoundTrip: a history exported as etcd's key bucket and
// imported into a new store gives the same HashKV, reads (current and
// old), revisions and compaction; the records are in revision order and
// hold no compacted version.
func TestEtcdRecordsRoundTrip(t *testing.T) {
	h := newHarness(t, Options{})
	for i := 0; i < 4; i++ {
		h.put("a", "v")
		h.put("b", "w")
	}
	h.del("a", "")
	h.mustOK(&pb.InternalRaftRequest{Txn: &pb.TxnRequest{Success: []*pb.RequestOp{putOp("x", "1"), putOp("y", "2"),
		{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte("b")}}}}}})
	h.put("a", "again")
	waitClosed(t, h.compact(6).Compacted, "physical compaction")
	h.put("c", "1")
	recs, rev, compactRev := exportEtcd(t, h)
	if rev != 13 || compactRev != 6 {
		t.Fatalf("exported at %d compacted %d", rev, compactRev)
	}
	kept := map[string]bool{}
	for i, r := range recs {
		if i > 0 && (r.main < recs[i-1].main || (r.main == recs[i-1].main && r.sub <= recs[i-1].sub)) {
			t.Errorf("record %d/%d after %d/%d", r.main, r.sub, recs[i-1].main, recs[i-1].sub)
		}
		if r.main <= compactRev && (r.tombstone || kept[string(r.kv.Key)]) {
			t.Errorf("compacted version %d/%d of %q exported", r.main, r.sub, r.kv.Key)
		}
		kept[string(r.kv.Key)] = r.main <= compactRev
	}
	if len(recs) != 11 { // kept: b@5, a@6; then b@7, a@8, b@9, del a@10, x, y, del b @11, a@12, c@13
		t.Errorf("%d records exported", len(recs))
	}
	g, res := importEtcd(t, recs, compactRev, ImportOptions{})
	if res.Rev != rev || res.CompactRev != compactRev || g.s.Rev() != rev || g.s.CompactRev() != compactRev {
		t.Fatalf("imported %+v, store at %d compacted %d", res, g.s.Rev(), g.s.CompactRev())
	}
	if g.hash(rev) != h.hash(rev) || g.hash(compactRev) != h.hash(compactRev) {
		t.Errorf("HashKV differs after the round trip")
	}
	for _, r := range []*pb.RangeRequest{{Key: []byte{0}, RangeEnd: []byte{0}}, {Key: []byte{0}, RangeEnd: []byte{0}, Revision: compactRev}} {
		want, got := h.rng(r), g.rng(r)
		equalMsg(t, "range", &pb.RangeResponse{Kvs: got.Kvs, Count: got.Count}, &pb.RangeResponse{Kvs: want.Kvs, Count: want.Count})
	}
	// Exported again, the imported store gives the same records.
	again, _, _ := exportEtcd(t, g)
	if len(again) != len(recs) {
		t.Errorf("re-exported %d records, want %d", len(again), len(recs))
	}
}

// TestEtcdImportChecks: records out of order, a put whose KeyValue does not
// match its revision, a deletion without a key are corrupt; etcdutl's
// --bump-revision marker only raises the revision; the options apply.
func TestEtcdImportChecks(t *testing.T) {
	put := &mvccpb.KeyValue{Key: []byte("k"), Value: []byte("v"), CreateRevision: 2, ModRevision: 2, Version: 1}
	for name, recs := range map[string][]etcdRecord{
		"out of order":  {{3, 0, false, &mvccpb.KeyValue{Key: []byte("k"), CreateRevision: 3, ModRevision: 3, Version: 1}}, {2, 0, false, put}},
		"same revision": {{2, 0, false, put}, {2, 0, false, put}},
		"mod != main":   {{5, 0, false, put}},
		"no version":    {{2, 0, false, &mvccpb.KeyValue{Key: []byte("k"), CreateRevision: 2, ModRevision: 2}}},
		"anonymous del": {{2, 0, true, &mvccpb.KeyValue{}}},
		"zero revision": {{0, 0, false, put}},
	} {
		h := &harness{t: t, fs: vfs.NewMem()}
		h.db = openDB(t, h.fs)
		e, err := NewEtcdImport(h.db)
		if err != nil {
			t.Fatal(err)
		}
		err = nil
		for _, r := range recs {
			if err = e.Add(r.main, r.sub, r.tombstone, r.kv); err != nil {
				break
			}
		}
		if !errors.Is(err, record.ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
		_ = e.Close()
		_ = h.db.Close()
	}
	marker := []etcdRecord{{2, 0, false, put}, {1002, 0, false, &mvccpb.KeyValue{}}}
	g, res := importEtcd(t, marker, 1002, ImportOptions{})
	if res.Rev != 1002 || res.CompactRev != 1002 || g.get("k") == nil {
		t.Errorf("with a bump marker: %+v", res)
	}
	g, res = importEtcd(t, marker[:1], -1, ImportOptions{BumpRevision: 100, MarkCompacted: true, Applied: 3, AppliedTerm: 1})
	if idx, term := g.s.Applied(); res.Rev != 102 || res.CompactRev != 102 || idx != 3 || term != 1 {
		t.Errorf("bumped: %+v, applied %d/%d", res, idx, term)
	}
	h := newHarness(t, Options{})
	h.put("k", "v")
	if _, err := NewEtcdImport(h.db); !errors.Is(err, ErrNotEmpty) {
		t.Errorf("import into a store with state: %v", err)
	}
}
