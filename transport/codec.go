package transport

import (
	"fmt"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// A batch is the protobuf encoding of
//
//	message Batch { repeated raftpb.Message messages = 1; }
//
// i.e. for every message: tag (field 1, wire type bytes), varint length,
// marshaled raftpb.Message. It is written by hand so that many raft messages
// share one gRPC message without generated code.
const batchField protowire.Number = 1

// maxBatchBytes bounds how much the sender packs into one gRPC message. A
// single message larger than this still goes out, alone.
const maxBatchBytes = 1 << 20

// cachedSize marshals using the size computed by proto.Size just before.
var cachedSize = proto.MarshalOptions{UseCachedSize: true}

// appendBatchMsg appends m to the batch encoding in b.
func appendBatchMsg(b []byte, m *raftpb.Message) ([]byte, error) {
	n := proto.Size(m)
	b = protowire.AppendTag(b, batchField, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(n))
	before := len(b)
	b, err := cachedSize.MarshalAppend(b, m)
	if err != nil {
		return b[:before], err
	}
	if len(b)-before != n {
		// The message changed between Size and Marshal: the caller broke
		// Send's ownership rule. Refuse rather than corrupt the stream.
		return b[:before], fmt.Errorf("transport: message to %x modified while being encoded", m.GetTo())
	}
	return b, nil
}

// decodeBatch calls fn for every message in the batch encoding b, in order.
// Each message is freshly allocated and owned by fn; nothing aliases b.
// Unknown fields are skipped for forward compatibility.
func decodeBatch(b []byte, fn func(*raftpb.Message)) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("transport: bad batch tag: %w", protowire.ParseError(n))
		}
		b = b[n:]
		if num != batchField || typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return fmt.Errorf("transport: bad batch field %d: %w", num, protowire.ParseError(n))
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return fmt.Errorf("transport: bad batch message: %w", protowire.ParseError(n))
		}
		b = b[n:]
		m, err := decodeMessage(v)
		if err != nil {
			return fmt.Errorf("transport: bad raft message: %w", err)
		}
		fn(m)
	}
	return nil
}
