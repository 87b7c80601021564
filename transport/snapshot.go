package transport

import (
	"context"
	"errors"
	"fmt"
	"io"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// streamSnapshot sends m and body to p on a new Snapshot stream and returns
// the receiver's verdict. On a local failure (body.WriteTo erred) the stream
// is canceled rather than half-closed, so the receiver never mistakes a
// truncated body for a complete one.
func (t *GRPC) streamSnapshot(p *peer, m *raftpb.Message, body io.WriterTo) error {
	if p.conn == nil {
		return fmt.Errorf("transport: snapshot to %x: %w: %v", p.id, ErrUnreachable, p.connErr)
	}
	head, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("transport: snapshot to %x: encoding header: %w", p.id, err)
	}
	ctx, cancel := context.WithCancel(p.outCtx)
	defer cancel()
	cs, err := p.conn.NewStream(ctx, &serviceDesc.Streams[snapshotStream], snapshotMethod, grpc.ForceCodecV2(peerCodec))
	if err != nil {
		return snapshotError(p.id, err)
	}
	if err := cs.SendMsg(&wrapperspb.BytesValue{Value: head}); err != nil {
		return snapshotError(p.id, sendFailed(cs, err))
	}
	w := &chunkWriter{cs: cs}
	if _, err := body.WriteTo(w); err != nil {
		if w.err != nil {
			return snapshotError(p.id, sendFailed(cs, w.err))
		}
		return fmt.Errorf("transport: snapshot to %x: reading body: %w", p.id, err)
	}
	if err := w.flush(); err != nil {
		return snapshotError(p.id, sendFailed(cs, err))
	}
	if err := cs.CloseSend(); err != nil {
		return snapshotError(p.id, sendFailed(cs, err))
	}
	return snapshotError(p.id, verdict(cs))
}

// sendFailed turns a SendMsg error into the stream's status: io.EOF means
// the receiver already finished, and RecvMsg tells how.
func sendFailed(cs grpc.ClientStream, err error) error {
	if errors.Is(err, io.EOF) {
		return verdict(cs)
	}
	return err
}

// verdict waits for the receiver's reply to a Snapshot stream.
func verdict(cs grpc.ClientStream) error {
	var ack emptypb.Empty
	err := cs.RecvMsg(&ack)
	if errors.Is(err, io.EOF) {
		return errors.New("transport: receiver sent no reply")
	}
	return err
}

// snapshotError wraps a stream error for done: a rejection by the
// receiver's Handler becomes ErrSnapshotRejected, the rest ErrUnreachable
// unless the receiver refused the stream itself.
func snapshotError(id uint64, err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("transport: snapshot to %x: %w", id, err)
	}
	switch st.Code() {
	case codes.Aborted:
		return fmt.Errorf("transport: snapshot to %x: %w: %s", id, ErrSnapshotRejected, st.Message())
	case codes.PermissionDenied, codes.FailedPrecondition, codes.InvalidArgument:
		return fmt.Errorf("transport: snapshot to %x: %w", id, err)
	default:
		return fmt.Errorf("transport: snapshot to %x: %w: %w", id, ErrUnreachable, err)
	}
}

// chunkWriter cuts a snapshot body into messages of exactly ChunkSize bytes
// (the last may be shorter). Every chunk is a buffer of chunkBuffers that
// peerCodec hands to gRPC as it is, and gRPC gives back once it wrote it.
// After a send error every Write fails. The body may build what it writes
// in the chunk itself (AvailableBuffer), as mvcc's Snapshot.WriteTo does:
// nothing is copied then.
type chunkWriter struct {
	cs    grpc.ClientStream
	chunk *[]byte // the chunk being filled, from chunkBuffers
	buf   []byte  // its filled part
	err   error
}

// AvailableBuffer returns the free space of the chunk being filled, empty,
// to append to and pass to Write right after.
func (w *chunkWriter) AvailableBuffer() []byte {
	w.grab()
	return w.buf[len(w.buf):len(w.buf)]
}

// grab takes a new chunk if none is being filled.
func (w *chunkWriter) grab() {
	if w.chunk == nil {
		w.chunk = chunkBuffers.Get(0)
		w.buf = (*w.chunk)[:0:ChunkSize]
	}
}

// Write implements io.Writer; it does not retain p.
func (w *chunkWriter) Write(p []byte) (int, error) {
	if w.inPlace(p) {
		w.buf = w.buf[:len(w.buf)+len(p)]
		if len(w.buf) == ChunkSize {
			w.flush()
		}
		return len(p), w.err
	}
	n := 0
	for len(p) > 0 {
		if w.err != nil {
			return n, w.err
		}
		w.grab()
		k := min(len(p), ChunkSize-len(w.buf))
		w.buf = append(w.buf, p[:k]...)
		p, n = p[k:], n+k
		if len(w.buf) == ChunkSize {
			w.flush()
		}
	}
	return n, w.err
}

// inPlace is whether p is what was appended to AvailableBuffer's slice:
// the next bytes of the chunk itself.
func (w *chunkWriter) inPlace(p []byte) bool {
	free := w.buf[len(w.buf):cap(w.buf)]
	return w.err == nil && len(p) > 0 && len(p) <= len(free) && &p[0] == &free[0]
}

// flush sends the buffered partial chunk, if any.
func (w *chunkWriter) flush() error {
	if w.err != nil || len(w.buf) == 0 {
		return w.err
	}
	*w.chunk = w.buf
	w.err = w.cs.SendMsg(&chunkMsg{out: w.chunk})
	w.chunk, w.buf = nil, nil
	return w.err
}
