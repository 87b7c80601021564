package mvcc

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"
)

// harness is a store on an in-memory pebble DB plus a raft index counter.
type harness struct {
	t    testing.TB
	fs   vfs.FS
	dir  string                    // the DB's directory on fs
	fmv  pebble.FormatMajorVersion // the DB's format (0: Pebble's default)
	db   *pebble.DB
	s    *Store
	opts Options
	idx  uint64
}

// openDB opens the DB as a member does as far as reads are concerned: with
// Comparer and bloom filters (server/pebble.go).
func openDB(t testing.TB, fs vfs.FS) *pebble.DB {
	t.Helper()
	return openDBAt(t, fs, "db", 0)
}

// openDBAt is openDB in dir at format major version fmv (0: Pebble's
// default, below the one that can excise).
func openDBAt(t testing.TB, fs vfs.FS, dir string, fmv pebble.FormatMajorVersion) *pebble.DB {
	t.Helper()
	o := &pebble.Options{FS: fs, Logger: quietLogger{}, Comparer: Comparer, EventListener: readErrors(), FormatMajorVersion: fmv}
	o.Levels[0] = pebble.LevelOptions{FilterPolicy: bloom.FilterPolicy(10), FilterType: pebble.TableFilter}
	db, err := pebble.Open(dir, o)
	if err != nil {
		t.Fatalf("pebble.Open: %v", err)
	}
	return db
}

func newHarness(t testing.TB, opts Options) *harness {
	t.Helper()
	return startHarness(t, &harness{t: t, fs: vfs.NewMem(), dir: "db", opts: opts})
}

// newDiskHarness is newHarness on the OS's filesystem at format fmv.
func newDiskHarness(t testing.TB, opts Options, fmv pebble.FormatMajorVersion) *harness {
	t.Helper()
	return startHarness(t, &harness{t: t, fs: vfs.Default, dir: filepath.Join(t.TempDir(), "db"), fmv: fmv, opts: opts})
}

// startHarness opens h's DB and store, restoring through tables written
// next to the DB.
func startHarness(t testing.TB, h *harness) *harness {
	t.Helper()
	if h.opts.FS == nil {
		h.opts.FS, h.opts.IngestDir = h.fs, h.dir+".ingest"
	}
	h.db = openDBAt(t, h.fs, h.dir, h.fmv)
	h.open()
	t.Cleanup(func() {
		if h.s != nil {
			_ = h.s.Close()
		}
		if h.db != nil {
			_ = h.db.Close()
		}
	})
	return h
}

func (h *harness) open() {
	h.t.Helper()
	s, err := Open(h.db, h.opts)
	if err != nil {
		h.t.Fatalf("Open: %v", err)
	}
	h.s = s
	h.idx, _ = s.Applied()
}

// reopen closes the store and the DB and opens both again on the same files.
func (h *harness) reopen() {
	h.t.Helper()
	if err := h.s.Close(); err != nil {
		h.t.Fatalf("Close: %v", err)
	}
	if err := h.db.Close(); err != nil {
		h.t.Fatalf("db.Close: %v", err)
	}
	h.db = openDBAt(h.t, h.fs, h.dir, h.fmv)
	h.open()
}

func (h *harness) apply(req *pb.InternalRaftRequest) Result {
	h.t.Helper()
	h.idx++
	res, err := h.s.Apply(h.idx, 1, req)
	if err != nil {
		h.t.Fatalf("Apply(%d): fatal %v", h.idx, err)
	}
	if ai, _ := h.s.Applied(); ai != h.idx {
		h.t.Fatalf("applied index %d, want %d", ai, h.idx)
	}
	return res
}

func (h *harness) mustOK(req *pb.InternalRaftRequest) Result {
	h.t.Helper()
	res := h.apply(req)
	if res.Err != nil {
		h.t.Fatalf("Apply: request error %v", res.Err)
	}
	return res
}

func (h *harness) put(key, val string) *pb.PutResponse {
	h.t.Helper()
	return h.mustOK(&pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte(key), Value: []byte(val)}}).Resp.(*pb.PutResponse)
}

func (h *harness) del(key, end string) *pb.DeleteRangeResponse {
	h.t.Helper()
	return h.mustOK(&pb.InternalRaftRequest{DeleteRange: &pb.DeleteRangeRequest{Key: []byte(key), RangeEnd: bs(end)}}).Resp.(*pb.DeleteRangeResponse)
}

func (h *harness) txn(rt *pb.TxnRequest) (*pb.TxnResponse, error) {
	h.t.Helper()
	res := h.apply(&pb.InternalRaftRequest{Txn: rt})
	if res.Err != nil {
		return nil, res.Err
	}
	return res.Resp.(*pb.TxnResponse), nil
}

func (h *harness) compact(rev int64) Result {
	h.t.Helper()
	return h.apply(&pb.InternalRaftRequest{Compaction: &pb.CompactionRequest{Revision: rev}})
}

func (h *harness) rng(r *pb.RangeRequest) *pb.RangeResponse {
	h.t.Helper()
	resp, err := h.s.Range(context.Background(), r)
	if err != nil {
		h.t.Fatalf("Range(%v): %v", r, err)
	}
	return resp
}

func (h *harness) get(key string) *mvccpb.KeyValue {
	h.t.Helper()
	resp := h.rng(&pb.RangeRequest{Key: []byte(key)})
	if len(resp.Kvs) == 0 {
		return nil
	}
	return resp.Kvs[0]
}

func (h *harness) hash(rev int64) uint32 {
	h.t.Helper()
	v, _, _, err := h.s.HashKV(rev)
	if err != nil {
		h.t.Fatalf("HashKV(%d): %v", rev, err)
	}
	return v
}

// bs turns "" into nil and anything else into bytes.
func bs(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}

func kv(key, val string, create, mod, ver int64) *mvccpb.KeyValue {
	return &mvccpb.KeyValue{Key: []byte(key), Value: bs(val), CreateRevision: create, ModRevision: mod, Version: ver}
}

func equalMsg(t testing.TB, what string, got, want proto.Message) {
	t.Helper()
	if !proto.Equal(got, want) {
		t.Fatalf("%s:\n got  %v\n want %v", what, got, want)
	}
}

func wantErr(t testing.TB, got, want error) {
	t.Helper()
	if !errors.Is(got, want) {
		t.Fatalf("error %v, want %v", got, want)
	}
}

// waitClosed fails the test if ch is not closed within a generous deadline.
func waitClosed(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func rangeOp(r *pb.RangeRequest) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: r}}
}

func putOp(key, val string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(key), Value: []byte(val)}}}
}

func delOp(key, end string, prev bool) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte(key), RangeEnd: bs(end), PrevKv: prev}}}
}

func txnOp(rt *pb.TxnRequest) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: rt}}
}

// countVersions counts the raw version keys stored for key (any revision).
func countVersions(t testing.TB, db *pebble.DB, key string) int {
	t.Helper()
	lower := versionPrefix([]byte(key))
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: appendPrefixEnd(nil, lower)})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for v := it.First(); v; v = it.Next() {
		n++
	}
	return n
}

func bufioWriter(w io.Writer) *bufio.Writer { return bufio.NewWriter(w) }
func newCRC() hash.Hash32                   { return crc32.New(castagnoli) }
func be32(v uint32) []byte                  { return binary.BigEndian.AppendUint32(nil, v) }

// readErrors makes a block that fails its checksum an error of the read
// that found it, as the server's options do, instead of Pebble v2's
// default (Fatalf).
func readErrors() *pebble.EventListener {
	return &pebble.EventListener{DataCorruption: func(pebble.DataCorruptionInfo) {}}
}

// quietLogger keeps pebble's WAL-replay chatter out of test output.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)              {}
func (quietLogger) Errorf(format string, args ...any) {}
func (quietLogger) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

// versionPayload returns the payload of a version as the stored format
// defines it: tag, sub revision and, for a put, the marshaled KeyValue.
// setVersion writes the same bytes in place; tests build records with it.
func versionPayload(tag byte, sub int64, kv []byte) []byte {
	p := make([]byte, 0, versionHeaderLen+len(kv))
	p = append(p, tag)
	p = binary.BigEndian.AppendUint64(p, uint64(sub))
	return append(p, kv...)
}

// getGeneration is what a put's lookup answers, found the plain way, with
// a fresh iterator over src (visitKey): the tests' oracle for the group's
// lookup and the generation cache.
func getGeneration(src iterSource, prefix bool, key []byte, rev int64) (g generation, err error) {
	err = visitKey(src, prefix, key, rev, visitGeneration(&g))
	return g, err
}
