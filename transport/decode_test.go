package transport

import (
	"math/rand/v2"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// randomMessage sets a random subset of fields, sometimes ones only the
// slow path handles.
func randomMessage(r *rand.Rand) *raftpb.Message {
	u := func() *uint64 {
		if r.IntN(3) == 0 {
			return nil
		}
		return proto.Uint64(r.Uint64() >> r.IntN(64))
	}
	bs := func() []byte {
		switch r.IntN(3) {
		case 0:
			return nil
		case 1:
			return []byte{}
		}
		b := make([]byte, r.IntN(300))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	m := &raftpb.Message{
		To: u(), From: u(), Term: u(), LogTerm: u(), Index: u(),
		Commit: u(), RejectHint: u(), Vote: u(), Context: bs(),
	}
	if r.IntN(4) != 0 {
		m.Type = raftpb.MessageType(r.IntN(24)).Enum()
	}
	if r.IntN(2) == 0 {
		m.Reject = proto.Bool(r.IntN(2) == 0)
	}
	for range r.IntN(5) {
		e := &raftpb.Entry{Term: u(), Index: u(), Data: bs()}
		if r.IntN(2) == 0 {
			e.Type = raftpb.EntryType(r.IntN(3)).Enum()
		}
		m.Entries = append(m.Entries, e)
	}
	switch r.IntN(10) {
	case 0:
		m.Snapshot = &raftpb.Snapshot{Data: bs(), Metadata: &raftpb.SnapshotMetadata{Index: u()}}
	case 1:
		m.Responses = []*raftpb.Message{{To: u()}}
	}
	return m
}

func TestDecodeMessageMatchesProtoUnmarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	fast := 0
	for i := range 5000 {
		b, err := proto.Marshal(randomMessage(r))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := checkMessage(b); ok {
			fast++
		}
		checkDecodeSame(t, b)
		if i%7 == 0 { // duplicated fields: last one wins, entries append
			checkDecodeSame(t, append(b, b...))
		}
	}
	if fast < 3500 {
		t.Fatalf("fast path taken for only %d of 5000 messages", fast)
	}
	// Unknown fields, unknown enum values, wrong wire types: slow path.
	for _, b := range [][]byte{
		protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 1),
		protowire.AppendVarint(protowire.AppendTag(nil, fMsgType, protowire.VarintType), 77),
		protowire.AppendBytes(protowire.AppendTag(nil, fMsgTo, protowire.BytesType), []byte("x")),
		protowire.AppendBytes(protowire.AppendTag(nil, fMsgEntries, protowire.BytesType),
			protowire.AppendVarint(protowire.AppendTag(nil, fEntType, protowire.VarintType), 9)),
		{0x08}, {0x3a, 0x05, 0x01}, {0x00},
	} {
		if _, ok := checkMessage(b); ok {
			t.Errorf("fast path accepted %x", b)
		}
		checkDecodeSame(t, b)
	}
}

func checkDecodeSame(t *testing.T, b []byte) {
	t.Helper()
	want := new(raftpb.Message)
	werr := proto.Unmarshal(b, want)
	got, err := decodeMessage(b)
	if (err != nil) != (werr != nil) {
		t.Fatalf("%x: error %v, proto.Unmarshal: %v", b, err, werr)
	}
	if err == nil && !proto.Equal(got, want) {
		t.Fatalf("%x:\n got %v\nwant %v", b, got, want)
	}
}

func FuzzDecodeMessage(f *testing.F) {
	r := rand.New(rand.NewPCG(9, 10))
	for range 20 {
		b, _ := proto.Marshal(randomMessage(r))
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkDecodeSame(t, b) })
}

func TestDecodeMessageAllocations(t *testing.T) {
	hb, _ := proto.Marshal(&raftpb.Message{
		Type: raftpb.MessageType_MsgHeartbeat.Enum(), To: proto.Uint64(2), From: proto.Uint64(1),
		Term: proto.Uint64(5), Commit: proto.Uint64(100),
	})
	app := msg(1, 2, 10, []byte("payload"))
	app.Entries = append(app.Entries, &raftpb.Entry{Term: proto.Uint64(1), Index: proto.Uint64(12), Data: []byte("more")})
	appB, _ := proto.Marshal(app)
	for _, c := range []struct {
		name string
		b    []byte
		max  float64
	}{{"heartbeat", hb, 1}, {"MsgApp with 2 entries", appB, 4}} {
		n := testing.AllocsPerRun(100, func() {
			if _, err := decodeMessage(c.b); err != nil {
				t.Fatal(err)
			}
		})
		if n > c.max {
			t.Errorf("%s: %v allocations per decode, want <= %v", c.name, n, c.max)
		}
	}
}
