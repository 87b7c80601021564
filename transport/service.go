package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The hand-registered peer service. Messages use gRPC's default proto codec.
const (
	serviceName    = "synod.transport.v1.Peer"
	raftMethod     = "/" + serviceName + "/Raft"
	snapshotMethod = "/" + serviceName + "/Snapshot"
)

// Stream metadata keys. IDs are decimal.
const (
	mdCluster  = "synod-cluster-id"
	mdFrom     = "synod-from-id"
	mdTo       = "synod-to-id"
	mdAccepted = "synod-accepted" // header the receiver sends once it accepted a stream
)

// Indexes into serviceDesc.Streams.
const (
	raftStream     = 0
	snapshotStream = 1
)

// peerService is the handler type of serviceDesc; *GRPC implements it.
type peerService interface {
	serveRaft(ss grpc.ServerStream) error
	serveSnapshot(ss grpc.ServerStream) error
}

var serviceDesc = grpc.ServiceDesc{
	ServiceName: serviceName,
	HandlerType: (*peerService)(nil),
	Methods:     unaryMethods,
	Streams: []grpc.StreamDesc{
		raftStream: {
			StreamName:    "Raft",
			Handler:       func(srv any, ss grpc.ServerStream) error { return srv.(peerService).serveRaft(ss) },
			ClientStreams: true,
			ServerStreams: true,
		},
		snapshotStream: {
			StreamName:    "Snapshot",
			Handler:       func(srv any, ss grpc.ServerStream) error { return srv.(peerService).serveSnapshot(ss) },
			ClientStreams: true,
		},
	},
	Metadata: "synod/transport/service.go",
}

var errServerClosed = status.Error(codes.Unavailable, "transport: member is shutting down")

// serveRaft receives batches from one peer and hands each message to
// Handler.Process, in order, on this stream's goroutine.
func (t *GRPC) serveRaft(ss grpc.ServerStream) error {
	from, err := t.authorize(ss.Context())
	if err != nil {
		return err
	}
	if t.ctx.Err() != nil {
		return errServerClosed
	}
	if err := ss.SendHeader(metadata.Pairs(mdAccepted, "1")); err != nil {
		return err
	}
	return t.serve(func() error { return t.recvRaft(ss, from) })
}

func (t *GRPC) recvRaft(ss grpc.ServerStream, from uint64) error {
	process := t.cfg.Handler.Process
	var batch wrapperspb.BytesValue
	for {
		if err := ss.RecvMsg(&batch); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if t.ctx.Err() != nil {
			return errServerClosed
		}
		if t.removed(from) {
			return t.refuseRemoved(from)
		}
		if err := decodeBatch(batch.Value, process); err != nil {
			return status.Error(codes.InvalidArgument, err.Error())
		}
	}
}

// serveSnapshot receives one MsgSnap and its body and hands both to
// Handler.ReceiveSnapshot.
func (t *GRPC) serveSnapshot(ss grpc.ServerStream) error {
	from, err := t.authorize(ss.Context())
	if err != nil {
		return err
	}
	return t.serve(func() error { return t.recvSnapshot(ss, from) })
}

func (t *GRPC) recvSnapshot(ss grpc.ServerStream, from uint64) error {
	var head wrapperspb.BytesValue
	if err := ss.RecvMsg(&head); err != nil {
		if errors.Is(err, io.EOF) {
			return status.Error(codes.InvalidArgument, "transport: snapshot stream without header")
		}
		return err
	}
	m := new(raftpb.Message)
	if err := proto.Unmarshal(head.Value, m); err != nil {
		return status.Errorf(codes.InvalidArgument, "transport: bad snapshot header: %v", err)
	}
	if m.GetType() != raftpb.MessageType_MsgSnap {
		return status.Errorf(codes.InvalidArgument, "transport: snapshot stream carries %v", m.GetType())
	}
	body := &chunkReader{ss: ss, msg: newChunkMsg()}
	defer body.msg.release()
	if err := t.cfg.Handler.ReceiveSnapshot(m, body); err != nil {
		t.log.Warn("snapshot rejected", slog.String("peer", hexID(from)), slog.Any("err", err))
		return status.Error(codes.Aborted, err.Error())
	}
	if t.ctx.Err() != nil {
		return errServerClosed
	}
	return ss.SendMsg(&emptypb.Empty{})
}

// serve runs fn on a goroutine Close waits for, and returns early with
// Unavailable when the transport closes (which cancels the stream, so fn's
// pending RecvMsg fails and fn returns).
func (t *GRPC) serve(fn func() error) error {
	if !t.enter() {
		return errServerClosed
	}
	res := make(chan error, 1)
	go func() {
		defer t.wg.Done()
		res <- fn()
	}()
	select {
	case err := <-res:
		return err
	case <-t.ctx.Done():
		return errServerClosed
	}
}

// authorize checks a stream's metadata and returns the sender's ID.
func (t *GRPC) authorize(ctx context.Context) (uint64, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	cluster, ok := mdUint(md, mdCluster)
	if !ok {
		return 0, t.reject(codes.PermissionDenied, "stream carries no cluster ID")
	}
	if cluster != t.cfg.ClusterID {
		return 0, t.reject(codes.PermissionDenied, fmt.Sprintf(
			"stream from cluster %x, this member belongs to cluster %x", cluster, t.cfg.ClusterID))
	}
	from, ok := mdUint(md, mdFrom)
	if !ok || from == 0 {
		return 0, t.reject(codes.InvalidArgument, "stream carries no sender ID")
	}
	if t.removed(from) {
		return 0, t.refuseRemoved(from)
	}
	if to, ok := mdUint(md, mdTo); !ok || to != t.cfg.LocalID {
		return 0, t.reject(codes.FailedPrecondition, fmt.Sprintf(
			"stream from %x addressed to member %x reached member %x", from, to, t.cfg.LocalID))
	}
	return from, nil
}

func (t *GRPC) reject(code codes.Code, msg string) error {
	t.log.Warn("rejecting peer stream", slog.String("code", code.String()), slog.String("reason", msg))
	return status.Error(code, "transport: "+msg)
}

// mdUint reads a decimal uint64 metadata value.
func mdUint(md metadata.MD, key string) (uint64, bool) {
	v := md.Get(key)
	if len(v) != 1 {
		return 0, false
	}
	n, err := strconv.ParseUint(v[0], 10, 64)
	return n, err == nil
}

// chunkReader is the body handed to ReceiveSnapshot: the chunks of a
// Snapshot stream, each returned by at most one Read. It returns io.EOF
// after a complete stream and another error if the stream broke. Not safe
// for concurrent use.
type chunkReader struct {
	ss   grpc.ServerStream
	msg  *chunkMsg
	rest []byte // unread bytes of the chunk's current piece
	err  error
}

// next makes rest non-empty, from the chunk's next piece or the next
// chunk, or sets err.
func (r *chunkReader) next() bool {
	for len(r.rest) == 0 && r.err == nil {
		if r.rest = r.msg.next(); len(r.rest) > 0 {
			break
		}
		if err := r.ss.RecvMsg(r.msg); err != nil {
			r.err = err
			if !errors.Is(err, io.EOF) {
				r.err = fmt.Errorf("transport: snapshot stream broke: %w", err)
			}
			break
		}
		if n := r.msg.size(); n > ChunkSize {
			r.err = fmt.Errorf("transport: snapshot chunk of %d bytes exceeds %d", n, ChunkSize)
			break
		}
	}
	return len(r.rest) > 0
}

// Read implements io.Reader.
func (r *chunkReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if !r.next() {
		return 0, r.err
	}
	n := copy(p, r.rest)
	r.rest = r.rest[n:]
	return n, nil
}

// WriteTo implements io.WriterTo (used by io.Copy), writing each chunk
// without an intermediate copy.
func (r *chunkReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for r.next() {
		n, err := w.Write(r.rest)
		total += int64(n)
		r.rest = r.rest[n:]
		if err != nil {
			return total, err
		}
	}
	if errors.Is(r.err, io.EOF) {
		return total, nil
	}
	return total, r.err
}
