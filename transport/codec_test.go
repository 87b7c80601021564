package transport

import (
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

func TestBatchRoundTrip(t *testing.T) {
	in := []*raftpb.Message{
		msg(1, 2, 1, nil),
		msg(1, 2, 2, []byte("hello")),
		{}, // empty message: zero length
		msg(1, 2, 3, make([]byte, 70000)),
	}
	var b []byte
	for i, m := range in {
		var err error
		if b, err = appendBatchMsg(b, m); err != nil {
			t.Fatal(err)
		}
		if i == 1 { // an unknown field a newer sender might add
			b = protowire.AppendTag(b, 9, protowire.VarintType)
			b = protowire.AppendVarint(b, 77)
		}
	}
	var out []*raftpb.Message
	if err := decodeBatch(b, func(m *raftpb.Message) { out = append(out, m) }); err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("decoded %d messages, want %d", len(out), len(in))
	}
	for i := range in {
		if !proto.Equal(in[i], out[i]) {
			t.Fatalf("message %d: got %v, want %v", i, out[i], in[i])
		}
	}
	// Decoded messages must not alias the batch buffer.
	for i := range b {
		b[i] = 0xff
	}
	if string(out[1].GetEntries()[0].GetData()) != "hello" {
		t.Fatal("decoded entry aliases the batch buffer")
	}
}

func TestBatchIsRepeatedMessageField(t *testing.T) {
	m := msg(4, 5, 6, []byte("x"))
	b, err := appendBatchMsg(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	want := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), mustMarshal(t, m))
	if string(b) != string(want) {
		t.Fatal("batch encoding is not `repeated raftpb.Message messages = 1`")
	}
}

func TestDecodeBatchRejectsGarbage(t *testing.T) {
	for _, b := range [][]byte{
		{0x0a, 0x05, 0x01},       // length beyond the end
		{0x0a, 0x02, 0xff, 0xff}, // not a raft message
		{0xff},                   // truncated tag
	} {
		if err := decodeBatch(b, func(*raftpb.Message) {}); err == nil {
			t.Errorf("decodeBatch(%x) accepted", b)
		}
	}
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func BenchmarkBatchDecode(b *testing.B) {
	var buf []byte
	for i := range 64 {
		buf, _ = appendBatchMsg(buf, msg(1, 2, uint64(i), make([]byte, 128)))
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		_ = decodeBatch(buf, func(*raftpb.Message) {})
	}
}
