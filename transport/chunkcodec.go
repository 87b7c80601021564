package transport

import (
	"sync"

	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// peerCodec is the gRPC codec of the peer service at both ends (the
// snapshot sender's call option, the peer server's ServerOptions): gRPC's
// proto codec, except for snapshot body chunks (chunkMsg), whose bytes it
// neither copies nor allocates. A chunk is on the wire exactly what a
// google.protobuf.BytesValue holding it is (field 1, length-delimited), so
// a member of a release without this codec sends and receives the same
// bytes.
var peerCodec encoding.CodecV2 = chunkCodec{proto: encoding.GetCodecV2(protocodec.Name)}

// chunkCodec implements peerCodec.
type chunkCodec struct{ proto encoding.CodecV2 }

// Name implements encoding.CodecV2: the proto codec's, which it stands for.
func (c chunkCodec) Name() string { return c.proto.Name() }

// Marshal implements encoding.CodecV2. A chunk being sent is its tag and
// length, then its buffer itself, which gRPC gives back to chunkBuffers
// once written.
func (c chunkCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(*chunkMsg)
	if !ok || m.out == nil {
		return c.proto.Marshal(v)
	}
	buf := m.out
	m.out = nil // gRPC owns it now
	if len(*buf) == 0 {
		chunkBuffers.Put(buf)
		return nil, nil // an empty BytesValue has no bytes
	}
	head := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.BytesType), uint64(len(*buf)))
	return mem.BufferSlice{mem.SliceBuffer(head), mem.NewBuffer(buf, chunkBuffers)}, nil
}

// Unmarshal implements encoding.CodecV2. A received chunk in the usual
// form (the one field, once) keeps gRPC's buffers, unread, until the next
// chunk; any other form of a BytesValue is decoded by the proto codec.
func (c chunkCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*chunkMsg)
	if !ok {
		return c.proto.Unmarshal(data, v)
	}
	m.release()
	if skip, ok := chunkValueAt(data); ok {
		data.Ref()
		m.in, m.skip, m.n = data, skip, data.Len()-skip
		return nil
	}
	return c.proto.Unmarshal(data, m.BytesValue)
}

// chunkValueAt returns where the value of a BytesValue encoded as its one
// field, whose tag and length are in the first buffer, starts.
func chunkValueAt(data mem.BufferSlice) (int, bool) {
	if len(data) == 0 {
		return 0, false
	}
	b := data[0].ReadOnlyData()
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 || num != 1 || typ != protowire.BytesType {
		return 0, false
	}
	size, k := protowire.ConsumeVarint(b[n:])
	if k < 0 || uint64(data.Len()-n-k) != size {
		return 0, false
	}
	return n + k, true
}

// chunkMsg is one snapshot body chunk, sent or received through peerCodec.
// Any other codec sees the BytesValue it embeds (a receiver whose server
// was made without ServerOptions decodes the chunk into it).
type chunkMsg struct {
	*wrapperspb.BytesValue
	out  *[]byte         // to send: a buffer of chunkBuffers, handed to gRPC by Marshal
	in   mem.BufferSlice // received: the message's buffers, held until release
	skip int             // bytes of in before the value, not yet passed
	n    int             // the value's length
	i    int             // the buffer of in that next returns
}

// newChunkMsg returns a chunk to receive into.
func newChunkMsg() *chunkMsg { return &chunkMsg{BytesValue: new(wrapperspb.BytesValue)} }

// size is the length of the received chunk.
func (m *chunkMsg) size() int {
	if m.in != nil {
		return m.n
	}
	return len(m.GetValue())
}

// next returns the received value's next piece, empty once all were.
func (m *chunkMsg) next() []byte {
	if m.in == nil {
		v := m.GetValue()
		m.Value = nil
		return v
	}
	for m.i < len(m.in) {
		b := m.in[m.i].ReadOnlyData()
		m.i++
		if m.skip >= len(b) {
			m.skip -= len(b)
			continue
		}
		b, m.skip = b[m.skip:], 0
		return b
	}
	return nil
}

// release gives back the received chunk's buffers.
func (m *chunkMsg) release() {
	if m.in != nil {
		m.in.Free()
	}
	m.in, m.skip, m.n, m.i = nil, 0, 0, 0
	m.Value = nil
}

// chunkBuffers holds the chunk buffers of snapshots being sent.
var chunkBuffers mem.BufferPool = &chunkPool{}

// chunkPool is a mem.BufferPool of ChunkSize buffers.
type chunkPool struct{ p sync.Pool }

func (c *chunkPool) Get(n int) *[]byte {
	if b, ok := c.p.Get().(*[]byte); ok && cap(*b) >= n {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, max(n, ChunkSize))
	return &b
}

func (c *chunkPool) Put(b *[]byte) {
	if cap(*b) == ChunkSize {
		c.p.Put(b)
	}
}
