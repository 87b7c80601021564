package mvcc

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/record"
)

// FuzzDecodeVersion: a stored key version (any user key and revision, any
// stored bytes) decodes without panicking, fails only with
// record.ErrCorrupt, and whatever is accepted re-encodes to the same bytes.
// framedTag (a count's check) accepts whatever openVersion accepts, with the
// same tag.
func FuzzDecodeVersion(f *testing.F) {
	kv, _ := proto.Marshal(&mvccpb.KeyValue{Key: []byte("k"), Value: []byte("v"), CreateRevision: 2, ModRevision: 3, Version: 2, Lease: 7})
	f.Add([]byte("k"), int64(3), seal(versionKey([]byte("k"), 3), versionPayload(tagPut, 0, kv)))
	f.Add([]byte("k"), int64(4), seal(versionKey([]byte("k"), 4), versionPayload(tagTombstone, 1, nil)))
	f.Add([]byte("k"), int64(5), seal(versionKey([]byte("k"), 4), versionPayload(tagPut, 0, kv)))
	f.Add([]byte{0, 0xff, 0}, int64(-1), []byte{0, 0, 0, 0})
	f.Add([]byte("k"), int64(6), seal(versionKey([]byte("k"), 6), versionPayload(tagPut, 0, nil)))
	f.Fuzz(func(t *testing.T, key []byte, rev int64, value []byte) {
		vk := versionKey(key, rev)
		prefix, gotRev, err := splitVersionKey(vk)
		if err != nil || gotRev != rev || !bytes.Equal(prefix, versionPrefix(key)) {
			t.Fatalf("versionKey(%q, %d) splits to %x, %d, %v", key, rev, prefix, gotRev, err)
		}
		framed, ferr := framedTag(vk, value)
		if ferr != nil && !errors.Is(ferr, record.ErrCorrupt) {
			t.Fatalf("framedTag: %v does not wrap ErrCorrupt", ferr)
		}
		tag, sub, data, err := openVersion(vk, value)
		if err == nil && (ferr != nil || framed != tag) {
			t.Fatalf("openVersion accepted %x as tag %d; framedTag says %d, %v", value, tag, framed, ferr)
		}
		if err != nil {
			if !errors.Is(err, record.ErrCorrupt) {
				t.Fatalf("openVersion: %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if again := seal(vk, versionPayload(tag, sub, data)); !bytes.Equal(again, value) {
			t.Fatalf("accepted %x, which re-encodes as %x", value, again)
		}
		if tag == tagPut {
			if _, err := decodeKV(vk, data); err != nil && !errors.Is(err, record.ErrCorrupt) {
				t.Fatalf("decodeKV: %v does not wrap ErrCorrupt", err)
			}
		}
	})
}

// FuzzSplitKeys: any bytes found under the version or revision log
// prefixes split without panicking, or fail with record.ErrCorrupt.
func FuzzSplitKeys(f *testing.F) {
	f.Add(versionKey([]byte("k"), 3))
	f.Add(logKey(3, 1))
	f.Add([]byte{0x10})
	f.Add([]byte{0x11, 1, 2})
	f.Fuzz(func(t *testing.T, k []byte) {
		if _, _, err := splitVersionKey(k); err != nil && !errors.Is(err, record.ErrCorrupt) {
			t.Fatalf("splitVersionKey: %v", err)
		}
		if _, err := splitLogKey(k); err != nil && !errors.Is(err, record.ErrCorrupt) {
			t.Fatalf("splitLogKey: %v", err)
		}
	})
}

// fuzzStream is a small, valid snapshot stream.
func fuzzStream(f *testing.F) []byte {
	db, err := pebble.Open("db", &pebble.Options{FS: vfs.NewMem(), Logger: quietLogger{}})
	if err != nil {
		f.Fatal(err)
	}
	defer db.Close()
	s, err := Open(db, Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	for i, k := range []string{"a", "b", "a"} {
		if _, err := s.Apply(uint64(i+1), 1, &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte(k), Value: []byte("v")}}); err != nil {
			f.Fatal(err)
		}
	}
	sn := s.NewSnapshot()
	defer sn.Close()
	var buf bytes.Buffer
	if _, err := sn.WriteTo(&buf); err != nil {
		f.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzSnapshotStream: a received raft snapshot stream (as ReceiveSnapshot
// parses it)
// and a client backup (VerifyBackup: stream, padding, sha256) are parsed
// without panicking, and every bad one is refused with record.ErrCorrupt
// or ErrBackupHash, before anything is restored from it.
func FuzzSnapshotStream(f *testing.F) {
	stream := fuzzStream(f)
	content := append(append([]byte(nil), stream...), make([]byte, BackupPadding(int64(len(stream))))...)
	sum := sha256.Sum256(content)
	f.Add(stream, false)
	f.Add(append(content, sum[:]...), false)
	f.Add(append(content, sum[:]...), true)
	f.Add(stream[:len(stream)-1], true)
	f.Add([]byte{}, false)
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte, skipHash bool) {
		path := filepath.Join(dir, "fuzz.snap")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		sr := &streamReader{r: bufio.NewReader(bytes.NewReader(data)), left: math.MaxInt64, crc: newCRC(), open: true}
		if _, err := readStreamFrom(sr, nil); err != nil && !errors.Is(err, record.ErrCorrupt) {
			t.Fatalf("received stream: %v", err)
		}
		if _, err := VerifyBackup(path, skipHash); err != nil && !errors.Is(err, record.ErrCorrupt) && !errors.Is(err, ErrBackupHash) {
			t.Fatalf("VerifyBackup: %v", err)
		}
	})
}
