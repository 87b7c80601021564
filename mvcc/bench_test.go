package mvcc

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// BenchmarkApplyPut applies one put per entry over a store already holding
// the keys it overwrites: the per-entry apply cost a follower pays (the
// previous-version lookup, the batch and its commit).
func BenchmarkApplyPut(b *testing.B) {
	h := newHarness(b, Options{})
	const keys = 10000
	val := make([]byte, 256)
	req := func(i int) *pb.InternalRaftRequest {
		key := binary.BigEndian.AppendUint64([]byte("k"), uint64(i%keys))
		return &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: key, Value: val}}
	}
	for i := 0; i < keys; i++ {
		h.apply(req(i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.apply(req(i))
	}
}

// BenchmarkReadTxnOneKey reads one key per read-only txn, as each Get of
// clientv3's STM does (etcd's stm benchmark: 1,000 keys, each rewritten
// over and over), from a store whose keys have versions in sstables and in
// the memtable.
func BenchmarkReadTxnOneKey(b *testing.B) {
	h := newHarness(b, Options{})
	const keys, rounds = 1000, 60
	val := make([]byte, 256)
	key := func(i int) []byte { return binary.BigEndian.AppendUint64([]byte("k"), uint64(i%keys)) }
	for r := 0; r < rounds; r++ {
		for i := 0; i < keys; i++ {
			h.apply(&pb.InternalRaftRequest{Put: &pb.PutRequest{Key: key(i), Value: val}})
		}
		if r%20 == 19 {
			if err := h.db.Flush(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rt := &pb.TxnRequest{Success: []*pb.RequestOp{rangeOp(&pb.RangeRequest{Key: key(i * 7), Serializable: true})}}
		resp, err := h.s.ReadTxn(b.Context(), rt)
		if err != nil || len(resp.Responses[0].GetResponseRange().GetKvs()) != 1 {
			b.Fatalf("ReadTxn: %v %v", resp, err)
		}
	}
}

// BenchmarkReceiveSnapshot receives a stream of 64 MiB of 1 KiB values
// (one random value, as etcd's benchmark tool writes in the scale
// benchmark) into tables on disk: what a new member does with the
// leader's stream while it arrives.
func BenchmarkReceiveSnapshot(b *testing.B) {
	stream := benchStream(b, 64<<10, 1024)
	index, term := trailerOf(stream)
	h := newDiskHarness(b, Options{}, pebble.FormatTableFormatV6)
	b.SetBytes(int64(len(stream)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := h.s.ReceiveSnapshot(index, term, bytes.NewReader(stream)); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := h.s.removeReceived(index); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkParseSnapshot parses and verifies the same stream only.
func BenchmarkParseSnapshot(b *testing.B) {
	stream := benchStream(b, 64<<10, 1024)
	b.SetBytes(int64(len(stream)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sr := &streamReader{r: bufio.NewReaderSize(bytes.NewReader(stream), 1<<16), left: math.MaxInt64, crc: newCRC(), open: true}
		if _, err := readStreamFrom(sr, func(k, v []byte) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}

// benchStream is a valid stream of n records with one random value of size
// bytes, under version-like keys.
func benchStream(b *testing.B, n, size int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	var buf bytes.Buffer
	sw := &streamWriter{w: bufioWriter(&buf), crc: newCRC()}
	sw.write(append([]byte(snapMagic), snapVersion))
	val := make([]byte, size)
	for j := range val {
		val[j] = byte(rng.Uint32())
	}
	for i := 0; i < n; i++ {
		k := binary.BigEndian.AppendUint64([]byte{prefixVersion, 'k'}, uint64(i))
		sw.record(k, val)
	}
	tr := append([]byte{frameTrailer}, be64(7)...)
	tr = append(append(tr, be64(1)...), be64(uint64(n))...)
	sw.write(tr)
	sw.writeRaw(be32(sw.crc.Sum32()))
	if sw.flush(); sw.err != nil {
		b.Fatal(sw.err)
	}
	return buf.Bytes()
}

// BenchmarkRangeCountLimit reads 10 keys of a range of 20,000 keys of 1 KiB
// and counts the whole range, as a Range with a limit does (etcd's semantics),
// from tables compressed as a member's are: what a Kubernetes list of one
// page costs, per key counted past the page.
func BenchmarkRangeCountLimit(b *testing.B) {
	h := startHarness(b, &harness{t: b, fs: vfs.NewMem(), dir: "db", fmv: pebble.FormatTableFormatV6})
	cache := pebble.NewCache(64 << 20) // holds the range's blocks, as a member's grown cache would
	defer cache.Unref()
	o := &pebble.Options{Logger: quietLogger{}, Cache: cache, FormatMajorVersion: pebble.FormatTableFormatV6}
	SetKeyLayout(o)
	for i := range o.Levels {
		o.Levels[i].BlockSize = BlockSize
	}
	h.reopenWith(o)
	const keys = 20000
	val := bytes.Repeat([]byte{0}, 1024)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range val[:512] {
		val[i] = byte(r.Uint32())
	}
	for i := 0; i < keys; i++ {
		key := binary.BigEndian.AppendUint64([]byte("k"), uint64(i))
		h.apply(&pb.InternalRaftRequest{Put: &pb.PutRequest{Key: key, Value: val}})
	}
	if err := h.db.Compact(b.Context(), []byte{0}, []byte{0xff}, false); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp := h.rng(&pb.RangeRequest{Key: []byte("k"), RangeEnd: []byte("l"), Limit: 10, Serializable: true})
		if resp.Count != keys || len(resp.Kvs) != 10 {
			b.Fatalf("count %d, %d kvs", resp.Count, len(resp.Kvs))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/keys, "ns/key")
}
