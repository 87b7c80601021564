package mvcc

import (
	"errors"
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/record"
)

// decodeGeneration reads the create revision and version a full decode
// reads, whatever the other fields hold, and calls a malformed record
// corrupt.
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
		create, version, err := decodeGeneration([]byte("vk"), b)
		if err != nil || create != kv.CreateRevision || version != kv.Version {
			t.Errorf("%q: create %d version %d (%v), want %d %d", kv.Key, create, version, err, kv.CreateRevision, kv.Version)
		}
	}
	good, _ := proto.Marshal(kvs[0])
	for _, bad := range [][]byte{{0x10}, {0x2a, 0x05, 'a'}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, good[:len(good)-1]} {
		if _, _, err := decodeGeneration([]byte("vk"), bad); !errors.Is(err, record.ErrCorrupt) {
			t.Errorf("decodeGeneration(%x) = %v, want record.ErrCorrupt", bad, err)
		}
	}
}
