package mvcc

import (
	"bytes"
	"errors"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/record"
)

// decodeGeneration reads the create revision and version, and
// decodeKeyLease the key and lease, that a full decode reads, whatever the
// other fields hold, and both call a malformed record corrupt.
func TestDecodeGeneration(t *testing.T) {
	kvs := []*mvccpb.KeyValue{
		{Key: []byte("k"), CreateRevision: 5, ModRevision: 9, Version: 3, Value: []byte("v"), Lease: 7},
		{Key: []byte("k\x00"), CreateRevision: 1 << 40, ModRevision: 1 << 41, Version: 1},
		{Key: []byte("only key")},
		{Key: []byte("big"), CreateRevision: 2, Version: 1 << 20, Value: make([]byte, 70000)},
	}
	for _, kv := range kvs {
		b, err := proto.Marshal(kv)
		if err != nil {
			t.Fatal(err)
		}
		b = protowire.AppendVarint(protowire.AppendTag(b, 99, protowire.VarintType), 1) // a field from the future
		create, version, lease, err := decodeGeneration([]byte("vk"), b)
		if err != nil || create != kv.CreateRevision || version != kv.Version || lease != kv.Lease {
			t.Errorf("%q: create %d version %d lease %d (%v), want %d %d %d", kv.Key, create, version, lease, err, kv.CreateRevision, kv.Version, kv.Lease)
		}
		key, lease, err := decodeKeyLease([]byte("vk"), b)
		if err != nil || !bytes.Equal(key, kv.Key) || lease != kv.Lease {
			t.Errorf("%q: key %q lease %d (%v), want lease %d", kv.Key, key, lease, err, kv.Lease)
		}
	}
	good, _ := proto.Marshal(kvs[0])
	for _, bad := range [][]byte{{0x10}, {0x2a, 0x05, 'a'}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, good[:len(good)-1]} {
		if _, _, _, err := decodeGeneration([]byte("vk"), bad); !errors.Is(err, record.ErrCorrupt) {
			t.Errorf("decodeGeneration(%x) = %v, want record.ErrCorrupt", bad, err)
		}
		if _, _, err := decodeKeyLease([]byte("vk"), bad); !errors.Is(err, record.ErrCorrupt) {
			t.Errorf("decodeKeyLease(%x) = %v, want record.ErrCorrupt", bad, err)
		}
	}
}

// setVersion and writer.log store exactly the bytes of the format they
// encode in place: seal(key, versionPayload(tag, sub, marshal(kv))) and
// seal(logKey, tag+key). Stores written before they existed must read the
// same.
func TestRecordsEncodedInPlaceKeepTheFormat(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	defer db.Close()
	kvs := []*mvccpb.KeyValue{
		{Key: []byte("k"), CreateRevision: 5, ModRevision: 9, Version: 3, Value: []byte("v"), Lease: 7},
		{Key: []byte("empty value"), CreateRevision: 2, ModRevision: 2, Version: 1},
		nil, // a tombstone
	}
	for i, kv := range kvs {
		b := db.NewIndexedBatch()
		vk := versionKey([]byte("k"), 9)
		tag, data := tagTombstone, []byte(nil)
		if kv != nil {
			tag = tagPut
			var err error
			if data, err = proto.Marshal(kv); err != nil {
				t.Fatal(err)
			}
		}
		if err := setVersion(b, vk, tag, int64(i), kv); err != nil {
			t.Fatal(err)
		}
		w := &writer{b: b, beginRev: 8, changes: int64(i)}
		if err := w.log(tag, []byte("k")); err != nil {
			t.Fatal(err)
		}
		want := map[string][]byte{
			string(vk):                  seal(vk, versionPayload(tag, int64(i), data)),
			string(logKey(9, int64(i))): seal(logKey(9, int64(i)), append([]byte{tag}, "k"...)),
		}
		r := b.Reader()
		for {
			_, key, value, ok, err := r.Next()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			if w, found := want[string(key)]; !found || !bytes.Equal(value, w) {
				t.Errorf("record %d under %x: %x, want %x", i, key, value, w)
			}
			delete(want, string(key))
		}
		if len(want) > 0 {
			t.Errorf("record %d: missing %d records", i, len(want))
		}
		b.Close()
	}
}
