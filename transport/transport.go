// Package transport carries raft messages between the members of a synod
// cluster.
//
// Two implementations share the Transport interface:
//
//   - GRPC, the production transport. Every member runs one gRPC service
//     (installed with GRPC.Register on the member's peer server). Each remote
//     peer gets a bounded queue and one sender goroutine that drains the queue
//     in batches over one long-lived gRPC stream. Snapshots travel on a
//     separate stream per snapshot, as a header message followed by the body
//     in chunks of at most ChunkSize bytes.
//   - MemNetwork, an in-memory network for tests, with partitions, one-way
//     cuts, crashed members and seeded random loss.
//
// # Delivery model
//
// Delivery is best effort, which is all raft needs: raft retransmits. Send
// never blocks the caller (the raft loop). A message that cannot be queued
// (queue full, unknown peer, link down) is dropped, and the owner is told
// through Handler.ReportUnreachable so raft can probe the follower instead of
// pipelining to it. Messages on one link arrive in the order they were sent,
// or not at all.
//
// # Handler calls
//
// A Transport calls its Handler only from goroutines of its own, never from
// inside Send, SendSnapshot, AddPeer or RemovePeer, so the raft loop may hold
// its own locks while calling into the transport. ReportUnreachable calls are
// coalesced: many drops towards one peer between two reports yield one call.
// After Close returns, the Handler is not called again.
//
// # Wire format (GRPC)
//
// Service "synod.transport.v1.Peer" has two hand-registered streaming
// methods and two unary ones (no generated code; see service.go and
// membership.go):
//
//   - Raft (bidi; the server only ever sends the final status). Each client
//     message is a google.protobuf.BytesValue whose value is a Batch encoded
//     as protobuf "message Batch { repeated raftpb.Message messages = 1; }".
//   - Snapshot (client streaming). The first BytesValue holds the marshaled
//     MsgSnap raftpb.Message, every further one a body chunk of at most
//     ChunkSize bytes. The reply is google.protobuf.Empty, or an error status
//     when the receiver rejected the snapshot. Both ends encode and decode
//     the chunks with peerCodec (chunkcodec.go), which neither copies nor
//     allocates their bytes; on the wire they are the same BytesValue
//     messages, so a member without it sends and receives them as before.
//   - Members (unary, Empty → BytesValue): the member's view of the cluster
//     (Membership.MemberList) for a member that is joining; it carries no
//     cluster metadata, since the joiner does not know the cluster ID yet.
//   - MemberChange (unary, BytesValue → BytesValue, operation in metadata
//     "synod-op"): a membership change forwarded to the leader; errors come
//     back as codes.Aborted with the Membership error's text.
//
// Both streams (and MemberChange) carry the sender's member ID, the
// receiver's member ID and the cluster ID in gRPC metadata. The receiver
// answers a stream from another cluster with codes.PermissionDenied and a stream addressed to
// another member with codes.FailedPrecondition, so mis-wired clusters (wrong
// --initial-cluster-token, stale peer URLs) never exchange raft state. A
// stream (or call) from a member the cluster removed is refused with
// codes.FailedPrecondition and ErrMemberRemoved's text; the refused sender
// calls Config.OnRemoved.
//
// The receive path decodes common raft messages with a hand-written fast
// path (decode.go) that produces exactly what proto.Unmarshal would, in
// 1 allocation for a heartbeat and 4 for a MsgApp instead of one per field.
package transport

import (
	"errors"
	"io"

	"go.etcd.io/raft/v3/raftpb"
)

// DefaultQueueSize is the per-peer (per-link for MemNetwork) send queue
// capacity, in messages, used when Config.QueueSize is zero.
const DefaultQueueSize = 4096

// ChunkSize is the largest snapshot body chunk put on the wire (and the
// largest slice a ReceiveSnapshot body reader returns from one Read).
const ChunkSize = 1 << 20

// Errors passed to SendSnapshot's done callback (wrapped, test with
// errors.Is).
var (
	// ErrClosed: the transport was closed before the operation finished.
	ErrClosed = errors.New("transport: closed")
	// ErrUnknownPeer: the destination was never added, or was removed.
	ErrUnknownPeer = errors.New("transport: unknown peer")
	// ErrUnreachable: the link to the destination is down.
	ErrUnreachable = errors.New("transport: peer unreachable")
	// ErrSnapshotRejected: the receiver's Handler.ReceiveSnapshot returned an
	// error; its text is included in the wrapped error.
	ErrSnapshotRejected = errors.New("transport: snapshot rejected by receiver")
)

// Handler is implemented by the raft loop's owner (raftnode). A Transport
// calls it from its own goroutines, possibly several at once, so every
// method must be safe for concurrent use. None may call back into Close of
// the same Transport (Close waits for in-flight Handler calls).
type Handler interface {
	// Process hands a received message to the raft loop. The callee owns m.
	// It must not block long: it runs on the receive path of the peer's
	// stream and stalls every later message from that peer (raftnode drops
	// the message when its inbox is full).
	Process(m *raftpb.Message)
	// ReportUnreachable says that a message to peer id was dropped or the
	// link to id is down. Calls are coalesced per peer.
	ReportUnreachable(id uint64)
	// ReportSnapshot reports the outcome of SendSnapshot to peer id.
	ReportSnapshot(id uint64, failed bool)
	// ReceiveSnapshot is called when a MsgSnap arrives with its body. It
	// blocks while the callee stores body; body returns io.EOF at the end of
	// a complete stream and another error if the stream broke. A non-nil
	// return rejects the snapshot (the sender's done gets an error wrapping
	// ErrSnapshotRejected). The callee owns m; body is valid only until
	// ReceiveSnapshot returns.
	ReceiveSnapshot(m *raftpb.Message, body io.Reader) error
}

// Transport sends raft messages to peers. All methods are safe for
// concurrent use.
//
// Send never blocks: each peer has a bounded queue; when it is full, or the
// peer is unknown or unreachable, the message is dropped and
// Handler.ReportUnreachable(peer) is called (asynchronously). Send takes
// ownership of the messages: the caller must not modify them (nor the
// entries they point to) afterwards, because they are encoded later on
// another goroutine. MsgSnap must go through SendSnapshot, never Send; a
// MsgSnap given to Send is dropped and reported as a failed snapshot.
type Transport interface {
	// Send queues msgs for their destinations (m.To) and returns at once.
	Send(msgs []*raftpb.Message)
	// SendSnapshot streams m (a MsgSnap) and then body to m.To on its own
	// goroutine and returns at once. When the receiver's ReceiveSnapshot
	// returned, it calls Handler.ReportSnapshot(m.To, failed) and then
	// done(err) (done may be nil). body.WriteTo runs on the transport's
	// goroutine; it may be given any io.Writer and must stop when a Write
	// fails. Ownership of m passes to the transport.
	SendSnapshot(m *raftpb.Message, body io.WriterTo, done func(error))
	// AddPeer makes peer id reachable at urls. It is idempotent; calling it
	// again with other URLs replaces them. The local member is ignored.
	AddPeer(id uint64, urls []string)
	// RemovePeer forgets peer id, dropping what is queued for it and
	// aborting snapshots in flight to it. Unknown ids are ignored.
	RemovePeer(id uint64)
	// Close stops all goroutines and connections. Afterwards Send drops
	// everything silently and no Handler method is called again. Close is
	// idempotent and must not be called from inside a Handler method.
	Close() error
}
