package etcdapi

import (
	"bytes"
	"context"
	"fmt"
	"math"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/alarm"
)

// kvService is etcd's KV service: Range, RangeStream, Put, DeleteRange, Txn
// and Compact, with the semantics of etcd's v3rpc kvServer and EtcdServer
// (server/etcdserver/v3_server.go).
type kvService struct {
	pb.UnsafeKVServer // compile error if the KV service grows a method
	e                 *edge
}

// Range reads keys: locally for a serializable read, after a read index
// otherwise.
func (k *kvService) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	if err := checkRangeRequest(r); err != nil {
		return nil, err
	}
	resp, err := k.rangeRead(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	resp.Header = k.e.fillHeader(resp.Header)
	return resp, nil
}

// rangeRead is Range past validation.
func (k *kvService) rangeRead(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	if err := k.e.readBarrier(ctx, r.GetSerializable()); err != nil {
		return nil, err
	}
	who, err := k.e.checkRange(ctx, r.Key, r.RangeEnd)
	if err != nil {
		return nil, err
	}
	resp, err := nonNil(k.e.b.KV.Range(ctx, r))
	if err != nil {
		return nil, err
	}
	return resp, k.e.stillCurrent(who)
}

// Put writes one key through raft.
func (k *kvService) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	if err := k.e.b.Quota.CheckQuota(ctx, alarm.CostPut(r)); err != nil {
		return nil, toGRPCError(err)
	}
	if err := checkPutRequest(r); err != nil {
		return nil, err
	}
	req := &pb.InternalRaftRequest{Put: r}
	if err := k.e.authorize(ctx, req); err != nil {
		return nil, toGRPCError(err)
	}
	resp, err := propose[*pb.PutResponse](ctx, k.e, req)
	if err != nil {
		return nil, toGRPCError(err)
	}
	resp.Header = k.e.fillHeader(resp.Header)
	return resp, nil
}

// DeleteRange deletes keys through raft.
func (k *kvService) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	if err := checkDeleteRequest(r); err != nil {
		return nil, err
	}
	req := &pb.InternalRaftRequest{DeleteRange: r}
	if err := k.e.authorize(ctx, req); err != nil {
		return nil, toGRPCError(err)
	}
	resp, err := propose[*pb.DeleteRangeResponse](ctx, k.e, req)
	if err != nil {
		return nil, toGRPCError(err)
	}
	resp.Header = k.e.fillHeader(resp.Header)
	return resp, nil
}

// Txn runs a transaction: a read-only one locally (after a read index unless
// every range in it is serializable), any other one through raft. Like etcd,
// only the top-level header is filled; the responses nested in it carry the
// revision the store gave them.
func (k *kvService) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	if err := k.e.b.Quota.CheckQuota(ctx, alarm.CostTxn(r)); err != nil {
		return nil, toGRPCError(err)
	}
	if err := checkTxn(r, k.e.limits().MaxTxnOps); err != nil {
		return nil, err
	}
	resp, err := k.txn(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	resp.Header = k.e.fillHeader(resp.Header)
	return resp, nil
}

// txn is Txn past validation.
func (k *kvService) txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	if !isTxnReadonly(r) {
		req := &pb.InternalRaftRequest{Txn: r}
		if err := k.e.authorize(ctx, req); err != nil {
			return nil, err
		}
		return propose[*pb.TxnResponse](ctx, k.e, req)
	}
	if err := k.e.readBarrier(ctx, isTxnSerializable(r)); err != nil {
		return nil, err
	}
	who, err := k.e.who(ctx)
	if err != nil {
		return nil, err
	}
	if err := k.e.b.Auth.CheckTxn(who, r, k.e.leaseKeys()); err != nil {
		return nil, err
	}
	resp, err := nonNil(k.e.b.KV.ReadTxn(ctx, r))
	if err != nil {
		return nil, err
	}
	return resp, k.e.stillCurrent(who)
}

// Compact compacts the key history through raft. As in etcd, the response
// revision is the store's revision once the compaction returned (for a
// physical compaction, once the deletion finished).
func (k *kvService) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	if err := k.e.requireAdmin(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	resp, err := propose[*pb.CompactionResponse](ctx, k.e, &pb.InternalRaftRequest{Compaction: r})
	if err != nil {
		return nil, toGRPCError(err)
	}
	resp.Header = k.e.fillIdentity(resp.Header)
	resp.Header.Revision = k.e.b.KV.Rev()
	return resp, nil
}

// RangeStream is Range answered in chunks (etcd 3.7): every chunk carries a
// disjoint, ordered slice of the keys; only the last one carries the header,
// More and Count, so that merging all chunks yields Range's response. The
// read is pinned to the store revision at the first chunk.
func (k *kvService) RangeStream(r *pb.RangeRequest, ss pb.KV_RangeStreamServer) error {
	if err := checkRangeStreamRequest(r); err != nil {
		return err
	}
	return toGRPCError(k.rangeStream(ss.Context(), r, ss.Send))
}

// rangeStream is RangeStream past validation; send delivers one chunk.
func (k *kvService) rangeStream(ctx context.Context, r *pb.RangeRequest, send func(*pb.RangeStreamResponse) error) error {
	if err := k.e.readBarrier(ctx, r.GetSerializable()); err != nil {
		return err
	}
	if _, err := k.e.checkRange(ctx, r.Key, r.RangeEnd); err != nil {
		return err
	}
	st := k.e.b.KV
	if r.GetCountOnly() {
		resp, err := nonNil(st.Range(ctx, r))
		if err != nil {
			return err
		}
		out := &pb.RangeResponse{Header: k.streamHeader(resp.GetHeader().GetRevision()), Count: resp.GetCount()}
		return send(&pb.RangeStreamResponse{RangeResponse: out})
	}
	c := newChunker(r, k.e.limits().MaxRequestBytes)
	for {
		out, err := c.next(ctx, st)
		if err != nil {
			return err
		}
		if out.Header != nil {
			out.Header = k.streamHeader(out.Header.Revision)
		}
		if err := send(&pb.RangeStreamResponse{RangeResponse: out}); err != nil {
			return err
		}
		if c.done {
			return nil
		}
	}
}

// streamHeader is the header of a RangeStream's last chunk: the member's
// identity and the pinned revision, never replaced by the live one.
func (k *kvService) streamHeader(rev int64) *pb.ResponseHeader {
	h := k.e.fillIdentity(nil)
	h.Revision = rev
	return h
}

// firstChunkLimit is the size, in keys, of a RangeStream's first chunk.
const firstChunkLimit = 10

// chunker splits one Range into chunks of about targetBytes each.
type chunker struct {
	req         *pb.RangeRequest // the next chunk's request
	left        int64            // keys the client's limit still allows
	sent        int64            // keys sent so far
	rev         int64            // the store revision at the first chunk
	targetBytes int
	done        bool
}

// newChunker prepares the chunks of r; r is not modified.
func newChunker(r *pb.RangeRequest, targetBytes int) *chunker {
	c := &chunker{req: proto.CloneOf(r), left: r.GetLimit(), targetBytes: targetBytes}
	if c.left <= 0 {
		c.left = math.MaxInt64
	}
	c.req.Limit = min(firstChunkLimit, c.left)
	return c
}

// next reads the next chunk. The last one (c.done) carries Header (with only
// the pinned revision), More and Count.
func (c *chunker) next(ctx context.Context, st KV) (*pb.RangeResponse, error) {
	resp, err := nonNil(st.Range(ctx, c.req))
	if err != nil {
		return nil, err
	}
	if c.rev == 0 {
		c.rev = resp.GetHeader().GetRevision()
		if c.req.Revision == 0 {
			c.req.Revision = c.rev // later chunks read the same snapshot
		}
	}
	n := int64(len(resp.Kvs))
	if resp.More && n == 0 {
		return nil, fmt.Errorf("%w: range chunk with more keys but none returned", errUnexpectedResponse)
	}
	out := &pb.RangeResponse{Kvs: resp.Kvs}
	c.sent += n
	c.left -= n
	if !resp.More || c.left == 0 {
		c.done = true
		out.Header = &pb.ResponseHeader{Revision: c.rev}
		out.More = resp.More
		out.Count = c.sent - n + resp.Count // resp.Count counts from this chunk's first key
		return out, nil
	}
	c.req.Key = append(bytes.Clone(resp.Kvs[n-1].Key), 0)
	c.req.Limit = min(nextChunkLimit(c.req.Limit, proto.Size(resp), c.targetBytes), c.left)
	return out, nil
}

// nextChunkLimit doubles the chunk size while chunks come out under half the
// target size and halves it while they come out over twice the target, as
// etcd's adjustChunkLimit does; it is at least 1 (0 would mean no limit).
func nextChunkLimit(limit int64, lastBytes, targetBytes int) int64 {
	switch {
	case lastBytes < targetBytes/2:
		limit *= 2
	case lastBytes > targetBytes*2:
		limit /= 2
	}
	return max(limit, 1)
}

// propose checks the size of a write, replicates it and returns the member's
// response, which must be a T.
func propose[T proto.Message](ctx context.Context, e *edge, req *pb.InternalRaftRequest) (T, error) {
	var zero T
	if err := checkRequestSize(req, e.limits().MaxRequestBytes); err != nil {
		return zero, err
	}
	msg, err := e.b.Raft.Propose(ctx, req)
	if err != nil {
		return zero, err
	}
	resp, ok := msg.(T)
	if !ok || !resp.ProtoReflect().IsValid() {
		e.lg.Error("etcdapi: member answered a proposal with the wrong response",
			"want", fmt.Sprintf("%T", zero), "got", fmt.Sprintf("%T", msg))
		return zero, errUnexpectedResponse
	}
	return resp, nil
}

// nonNil passes a store result through, turning a nil response without an
// error into errUnexpectedResponse so that handlers never dereference nil.
func nonNil[T proto.Message](resp T, err error) (T, error) {
	if err == nil && !resp.ProtoReflect().IsValid() {
		return resp, errUnexpectedResponse
	}
	return resp, err
}
