package mvcc

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand"
	"sort"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"
)

// etcdModel is a straightforward model of etcd 3.7's storage for HashKV: the
// bolt "key" bucket (revision bytes -> marshaled KeyValue) and the in-memory
// key index (generations of revisions), with etcd's compaction (keyIndex
// compact: a generation whose tombstone is >= the compaction revision stays,
// so a tombstone exactly at it stays in bolt) and etcd's hash (kvHasher over
// the bucket in key order, filtered by keyIndex keep at the hash revision).
type etcdModel struct {
	rev, compactRev int64
	sub             int64 // changes in the current write txn
	bolt            map[string][]byte
	index           map[string][][]etcdRev // user key -> generations, oldest first
}

type etcdRev struct{ main, sub int64 }

func newEtcdModel() *etcdModel {
	return &etcdModel{rev: 1, compactRev: -1, bolt: map[string][]byte{}, index: map[string][][]etcdRev{}}
}

func etcdBoltKey(r etcdRev, tomb bool) string {
	b := binary.BigEndian.AppendUint64(nil, uint64(r.main))
	b = append(b, '_')
	b = binary.BigEndian.AppendUint64(b, uint64(r.sub))
	if tomb {
		b = append(b, 't')
	}
	return string(b)
}

func (m *etcdModel) live(key string) bool {
	g := m.index[key]
	return len(g) > 0 && len(g[len(g)-1]) > 0
}

func (m *etcdModel) begin() { m.sub = 0 }

func (m *etcdModel) end() {
	if m.sub > 0 {
		m.rev++
	}
}

func (m *etcdModel) put(key, val string) {
	r := etcdRev{m.rev + 1, m.sub}
	m.sub++
	kv := mvccpb.KeyValue{Key: []byte(key), Value: []byte(val), CreateRevision: r.main, ModRevision: r.main, Version: 1}
	gens := m.index[key]
	if len(gens) == 0 {
		gens = [][]etcdRev{nil}
	}
	if g := gens[len(gens)-1]; len(g) > 0 {
		var prev mvccpb.KeyValue
		if err := proto.Unmarshal(m.bolt[etcdBoltKey(g[len(g)-1], false)], &prev); err != nil {
			panic(err)
		}
		kv.CreateRevision, kv.Version = prev.CreateRevision, prev.Version+1
	}
	b, err := proto.Marshal(&kv) // as etcd 3.7 (protobuf-go mvccpb)
	if err != nil {
		panic(err)
	}
	m.bolt[etcdBoltKey(r, false)] = b
	gens[len(gens)-1] = append(gens[len(gens)-1], r)
	m.index[key] = gens
}

// deleteRange deletes the live keys in [key, end) (end "" = just key).
func (m *etcdModel) deleteRange(key, end string) {
	var keys []string
	for k := range m.index {
		if m.live(k) && (k == key || (end != "" && k >= key && k < end)) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		r := etcdRev{m.rev + 1, m.sub}
		m.sub++
		kv := mvccpb.KeyValue{Key: []byte(k)}
		b, err := proto.Marshal(&kv)
		if err != nil {
			panic(err)
		}
		m.bolt[etcdBoltKey(r, true)] = b
		gens := m.index[k]
		gens[len(gens)-1] = append(gens[len(gens)-1], r)
		m.index[k] = append(gens, nil)
	}
}

// doCompact is etcd's keyIndex.doCompact.
func doCompact(gens [][]etcdRev, atRev int64, available map[etcdRev]bool) (genIdx, revIndex int) {
	for genIdx < len(gens)-1 {
		if g := gens[genIdx]; g[len(g)-1].main >= atRev {
			break
		}
		genIdx++
	}
	g := gens[genIdx]
	for i := len(g) - 1; i >= 0; i-- {
		if g[i].main <= atRev {
			available[g[i]] = true
			return genIdx, i
		}
	}
	return genIdx, -1
}

func isEmptyIndex(gens [][]etcdRev) bool { return len(gens) == 1 && len(gens[0]) == 0 }

func (m *etcdModel) compact(c int64) {
	m.compactRev = c
	available := map[etcdRev]bool{}
	for k, gens := range m.index {
		genIdx, revIndex := doCompact(gens, c, available)
		if g := gens[genIdx]; len(g) > 0 && revIndex != -1 {
			gens[genIdx] = g[revIndex:]
		}
		gens = gens[genIdx:]
		if isEmptyIndex(gens) {
			delete(m.index, k)
		} else {
			m.index[k] = gens
		}
	}
	for bk := range m.bolt {
		r := etcdRev{int64(binary.BigEndian.Uint64([]byte(bk[:8]))), int64(binary.BigEndian.Uint64([]byte(bk[9:17])))}
		if r.main <= c && !available[r] {
			delete(m.bolt, bk)
		}
	}
}

// hash is etcd's hashByRev at rev (> 0).
func (m *etcdModel) hash(rev int64) uint32 {
	keep := map[etcdRev]bool{}
	for _, gens := range m.index {
		if isEmptyIndex(gens) {
			continue
		}
		genIdx, revIndex := doCompact(gens, rev, keep)
		if g := gens[genIdx]; len(g) > 0 && revIndex == len(g)-1 && genIdx != len(gens)-1 {
			delete(keep, g[revIndex])
		}
	}
	var keys []string
	for bk := range m.bolt {
		keys = append(keys, bk)
	}
	sort.Strings(keys)
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	h.Write([]byte("key"))
	for _, bk := range keys {
		r := etcdRev{int64(binary.BigEndian.Uint64([]byte(bk[:8]))), int64(binary.BigEndian.Uint64([]byte(bk[9:17])))}
		tomb := len(bk) == 18 && bk[17] == 't'
		if r.main > rev {
			continue
		}
		if r.main < m.compactRev+1 && len(keep) > 0 && !keep[r] {
			continue
		}
		if r.main == m.compactRev && tomb {
			continue
		}
		h.Write([]byte(bk))
		h.Write(m.bolt[bk])
	}
	return h.Sum32()
}

// hop is one step of a history applied to both the store and the model.
type hop struct {
	kind     string // put, del, txn, compact
	key, val string
	end      string // del: range end ("" = one key)
	rev      int64  // compact
	ops      []hop  // txn: puts and dels of distinct keys
}

func hput(k, v string) hop   { return hop{kind: "put", key: k, val: v} }
func hdel(k, end string) hop { return hop{kind: "del", key: k, end: end} }
func htxn(ops ...hop) hop    { return hop{kind: "txn", ops: ops} }
func hcompact(rev int64) hop { return hop{kind: "compact", rev: rev} }
func (o hop) String() string {
	return fmt.Sprintf("%s(%q,%q,%q,%d,%v)", o.kind, o.key, o.val, o.end, o.rev, o.ops)
}
func requestOp(o hop) *pb.RequestOp {
	if o.kind == "put" {
		return putOp(o.key, o.val)
	}
	return delOp(o.key, o.end, false)
}

func (m *etcdModel) apply(o hop) {
	switch o.kind {
	case "compact":
		m.compact(o.rev)
		return
	case "txn":
		m.begin()
		for _, op := range o.ops {
			if op.kind == "put" {
				m.put(op.key, op.val)
			} else {
				m.deleteRange(op.key, op.end)
			}
		}
	case "put":
		m.begin()
		m.put(o.key, o.val)
	case "del":
		m.begin()
		m.deleteRange(o.key, o.end)
	}
	m.end()
}

func applyHop(h *harness, o hop) {
	h.t.Helper()
	switch o.kind {
	case "put":
		h.put(o.key, o.val)
	case "del":
		h.del(o.key, o.end)
	case "txn":
		var ops []*pb.RequestOp
		for _, op := range o.ops {
			ops = append(ops, requestOp(op))
		}
		if _, err := h.txn(&pb.TxnRequest{Success: ops}); err != nil {
			h.t.Fatalf("txn: %v", err)
		}
	case "compact":
		res := h.compact(o.rev)
		if res.Err != nil {
			h.t.Fatalf("compact %d: %v", o.rev, res.Err)
		}
	}
}

// checkHashes compares HashKV at every revision it answers with the model.
func checkHashes(t *testing.T, h *harness, m *etcdModel, what string) {
	t.Helper()
	if h.s.Rev() != m.rev || h.s.CompactRev() != m.compactRev {
		t.Fatalf("%s: store at %d/%d, model at %d/%d", what, h.s.Rev(), h.s.CompactRev(), m.rev, m.compactRev)
	}
	for rev := max(m.compactRev, 1); rev <= m.rev; rev++ {
		got, hashRev, compactRev, err := h.s.HashKV(rev)
		if err != nil {
			t.Fatalf("%s: HashKV(%d): %v", what, rev, err)
		}
		if want := m.hash(rev); got != want || hashRev != rev || compactRev != m.compactRev {
			t.Fatalf("%s: HashKV(%d) = %d rev %d compact %d, etcd model %d rev %d compact %d",
				what, rev, got, hashRev, compactRev, want, rev, m.compactRev)
		}
	}
	got, hashRev, _, err := h.s.HashKV(0)
	if err != nil || got != m.hash(m.rev) || hashRev != m.rev {
		t.Fatalf("%s: HashKV(0) = %d rev %d (%v), want %d rev %d", what, got, hashRev, err, m.hash(m.rev), m.rev)
	}
}

func runHashHistory(t *testing.T, ops []hop) {
	h := newHarness(t, Options{CompactionBatch: 2})
	m := newEtcdModel()
	checkHashes(t, h, m, "fresh store")
	for i, o := range ops {
		applyHop(h, o)
		m.apply(o)
		checkHashes(t, h, m, fmt.Sprintf("after op %d %v", i, o))
	}
	// Physical compaction finished: nothing changes; after a reopen neither.
	if m.compactRev > 0 {
		waitClosed(t, h.s.waitPhysical(m.compactRev), "physical compaction")
	}
	checkHashes(t, h, m, "after physical compaction")
	h.reopen()
	checkHashes(t, h, m, "after reopen")
}

func TestHashKVMatchesEtcd(t *testing.T) {
	cases := map[string][]hop{
		"empty":               nil,
		"puts and overwrites": {hput("a", "1"), hput("b", ""), hput("a", "2"), hput("c", "3"), hput("a", "")},
		"deletes": {hput("a", "1"), hput("b", "1"), hdel("a", ""), hput("a", "2"), hdel("a", "c"),
			hdel("zz", ""), hput("b", "3")},
		"txn subs": {htxn(hput("a", "1"), hput("b", "2"), hput("c", "3")),
			htxn(hdel("a", ""), hput("d", "4"), hdel("b", "")),
			htxn(hput("a", "5"), hdel("c", "e")), htxn(hdel("zz", ""))},
		"compaction history": {hput("a", "1"), hput("a", "2"), hput("b", "1"), hput("a", "3"), hdel("b", ""),
			hput("c", "1"), hput("d", "1"), hdel("c", ""), hdel("d", ""), hput("d", "2"), hput("a", "4"),
			hput("e", "1"), hput("a\x00", "z"), hcompact(9), hput("b", "2"), hcompact(12), hput("f", "1"), hcompact(16)},
		"compact at a tombstone in a txn": {htxn(hput("a", "1"), hput("b", "1")), htxn(hdel("a", ""), hput("c", "1")),
			hcompact(3), hput("a", "2"), htxn(hdel("b", ""), hdel("c", "")), hcompact(5)},
		"nothing live at the hash revision": {hput("a", "1"), hput("b", "1"), hcompact(3), hdel("a", ""), hdel("b", ""),
			hput("a", "2"), hdel("a", "")},
		"compact everything deleted": {hput("a", "1"), hput("b", "1"), hdel("a", "c"), hcompact(4), hput("c", "1")},
		"compact before any write":   {hcompact(0), hput("a", "1"), hcompact(1), hput("a", "2"), hcompact(2)},
	}
	for name, ops := range cases {
		t.Run(name, func(t *testing.T) { runHashHistory(t, ops) })
	}
}

// TestHashKVMatchesEtcdRandom runs random histories of puts, deletes, txns
// with several changes and compactions against the model.
func TestHashKVMatchesEtcdRandom(t *testing.T) {
	keys := []string{"a", "b", "c", "d", "e", "k\x00"}
	for seed := int64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewSource(seed))
			var ops []hop
			rev, compactRev := int64(1), int64(-1)
			live := map[string]bool{}
			for len(ops) < 60 {
				switch n := rng.Intn(10); {
				case n < 4:
					k := keys[rng.Intn(len(keys))]
					ops = append(ops, hput(k, fmt.Sprint(rng.Intn(3))))
					live[k], rev = true, rev+1
				case n < 6:
					k := keys[rng.Intn(len(keys))]
					ops = append(ops, hdel(k, ""))
					if live[k] {
						live[k], rev = false, rev+1
					}
				case n < 8:
					var txn []hop
					wrote := false
					for _, i := range rng.Perm(len(keys))[:1+rng.Intn(4)] {
						k := keys[i]
						if rng.Intn(2) == 0 {
							txn = append(txn, hput(k, "t"))
							live[k], wrote = true, true
						} else {
							txn = append(txn, hdel(k, ""))
							wrote = wrote || live[k]
							live[k] = false
						}
					}
					ops = append(ops, htxn(txn...))
					if wrote {
						rev++
					}
				default:
					if rev > compactRev+1 {
						compactRev = compactRev + 1 + rng.Int63n(rev-compactRev)
						ops = append(ops, hcompact(compactRev))
					}
				}
			}
			runHashHistory(t, ops)
		})
	}
}

// TestHashKVKnownAnswer replays tests/e2e TestWholeClusterRestart and checks
// the values a real etcd 3.7.3 cluster returned (tests/e2e/testdata/restart.golden).
func TestHashKVKnownAnswer(t *testing.T) {
	h := newHarness(t, Options{})
	m := newEtcdModel()
	var ops []hop
	for i := 0; i < 250; i++ {
		ops = append(ops, hput(fmt.Sprintf("wr/%04d", i%100), fmt.Sprintf("v%d", i)))
	}
	ops = append(ops, hdel("wr/005", "wr/006"), hcompact(152), hput("wr/last", "x"))
	for _, o := range ops {
		applyHop(h, o)
		m.apply(o)
	}
	for _, want := range []struct {
		rev  int64
		hash uint32
	}{{253, 598692548}, {202, 2650360799}} {
		got, hashRev, compactRev, err := h.s.HashKV(want.rev)
		if err != nil || got != want.hash || hashRev != want.rev || compactRev != 152 {
			t.Errorf("HashKV(%d) = %d rev %d compact %d (%v), etcd 3.7.3 %d rev %d compact 152",
				want.rev, got, hashRev, compactRev, err, want.hash, want.rev)
		}
		if mh := m.hash(want.rev); mh != want.hash {
			t.Errorf("model hash at %d = %d, etcd 3.7.3 %d", want.rev, mh, want.hash)
		}
	}
}

// TestHashKVRecordBytes checks the stored KeyValue and the tombstone value
// hashed are byte for byte what etcd stores: fields in number order, zero
// values omitted (as gogo's marshaling in older etcds, too).
func TestHashKVRecordBytes(t *testing.T) {
	h := newHarness(t, Options{})
	for i := 0; i < 298; i++ {
		h.put("x", "")
	}
	h.mustOK(&pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte("foo"), Value: []byte("bar")}}) // rev 300
	vk := versionKey([]byte("foo"), 300)
	tag, sub, data, err := getVersion(h.s.db.NewSnapshot(), vk)
	if err != nil || tag != tagPut || sub != 0 {
		t.Fatalf("stored version: tag %d sub %d err %v", tag, sub, err)
	}
	want := []byte{0x0a, 3, 'f', 'o', 'o', 0x10, 0xac, 0x02, 0x18, 0xac, 0x02, 0x20, 0x01, 0x2a, 3, 'b', 'a', 'r'}
	if !bytes.Equal(data, want) {
		t.Fatalf("stored KeyValue %x, want %x", data, want)
	}
	leased := mvccpb.KeyValue{Key: []byte("k"), CreateRevision: 2, ModRevision: 3, Version: 2, Lease: 0x7f}
	enc, _ := proto.Marshal(&leased)
	if want := []byte{0x0a, 1, 'k', 0x10, 2, 0x18, 3, 0x20, 2, 0x30, 0x7f}; !bytes.Equal(enc, want) {
		t.Fatalf("KeyValue %x, want %x", enc, want)
	}
	tomb, err := marshalTombstone(nil, []byte("foo"))
	if err != nil || !bytes.Equal(tomb, []byte{0x0a, 3, 'f', 'o', 'o'}) {
		t.Fatalf("tombstone value %x (%v)", tomb, err)
	}
	if got := appendEtcdRev(nil, 300, 2, true); !bytes.Equal(got, []byte{0, 0, 0, 0, 0, 0, 1, 0x2c, '_', 0, 0, 0, 0, 0, 0, 0, 2, 't'}) {
		t.Fatalf("etcd revision bytes %x", got)
	}
	// Fresh store: etcd hashes only the bucket name.
	if got := newHarness(t, Options{}).hash(0); got != crc32.Checksum([]byte("key"), castagnoli) {
		t.Fatalf("empty store hash %d", got)
	}
}
