package etcdapi

import (
	"math"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/pkg/v3/adt"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Request validation. Everything here is pure (no I/O) and follows etcd's
// server/etcdserver/api/v3rpc/key.go: the same checks, in the same order,
// returning the same rpctypes errors. Like etcd, nothing checks revisions at
// the edge: a negative Range revision reads at the current revision and a
// bad Compact revision fails when applied (mvcc.ErrCompacted/ErrFutureRev).

// checkRangeRequest validates a Range (also inside a txn).
func checkRangeRequest(r *pb.RangeRequest) error {
	if len(r.GetKey()) == 0 {
		return rpctypes.ErrGRPCEmptyKey
	}
	if _, ok := pb.RangeRequest_SortOrder_name[int32(r.GetSortOrder())]; !ok {
		return rpctypes.ErrGRPCInvalidSortOption
	}
	if _, ok := pb.RangeRequest_SortTarget_name[int32(r.GetSortTarget())]; !ok {
		return rpctypes.ErrGRPCInvalidSortOption
	}
	return nil
}

// checkRangeStreamRequest validates a RangeStream: a valid Range in the
// store's natural key order and without revision filters (etcd 3.7).
func checkRangeStreamRequest(r *pb.RangeRequest) error {
	if err := checkRangeRequest(r); err != nil {
		return err
	}
	if !isDefaultOrdering(r) {
		return errGRPCStreamSort
	}
	if hasRevisionFilters(r) {
		return errGRPCStreamFilters
	}
	return nil
}

// isDefaultOrdering reports whether r asks for the store's natural order
// (ascending by key), as etcd's txn.IsDefaultOrdering does.
func isDefaultOrdering(r *pb.RangeRequest) bool {
	order := r.GetSortOrder()
	return order == pb.RangeRequest_NONE ||
		(r.GetSortTarget() == pb.RangeRequest_KEY && order == pb.RangeRequest_ASCEND)
}

// hasRevisionFilters reports whether r filters on create or mod revisions.
func hasRevisionFilters(r *pb.RangeRequest) bool {
	return r.GetMinModRevision() != 0 || r.GetMaxModRevision() != 0 ||
		r.GetMinCreateRevision() != 0 || r.GetMaxCreateRevision() != 0
}

// checkPutRequest validates a Put (also inside a txn).
func checkPutRequest(r *pb.PutRequest) error {
	if len(r.GetKey()) == 0 {
		return rpctypes.ErrGRPCEmptyKey
	}
	if r.GetIgnoreValue() && len(r.GetValue()) != 0 {
		return rpctypes.ErrGRPCValueProvided
	}
	if r.GetIgnoreLease() && r.GetLease() != 0 {
		return rpctypes.ErrGRPCLeaseProvided
	}
	return nil
}

// checkDeleteRequest validates a DeleteRange (also inside a txn).
func checkDeleteRequest(r *pb.DeleteRangeRequest) error {
	if len(r.GetKey()) == 0 {
		return rpctypes.ErrGRPCEmptyKey
	}
	return nil
}

// checkTxn validates a top-level Txn: its shape and ops first, then that no
// key is written twice on the success path and on the failure path (the
// overlap check comes last, as in etcd, to avoid its cost on bad requests).
func checkTxn(r *pb.TxnRequest, maxTxnOps int) error {
	if err := checkTxnRequest(r, maxTxnOps); err != nil {
		return err
	}
	if _, err := checkWrites(r.GetSuccess()); err != nil {
		return err
	}
	_, err := checkWrites(r.GetFailure())
	return err
}

// checkTxnRequest validates the shape of a txn: at most maxTxnOps compares,
// success ops and failure ops each; compare keys present; every op valid. A
// nested txn gets what is left of the budget: maxTxnOps minus the largest of
// the three counts.
func checkTxnRequest(r *pb.TxnRequest, maxTxnOps int) error {
	opc := max(len(r.GetCompare()), len(r.GetSuccess()), len(r.GetFailure()))
	if opc > maxTxnOps {
		return rpctypes.ErrGRPCTooManyOps
	}
	for _, c := range r.GetCompare() {
		if len(c.GetKey()) == 0 {
			return rpctypes.ErrGRPCEmptyKey
		}
	}
	for _, ops := range [][]*pb.RequestOp{r.GetSuccess(), r.GetFailure()} {
		for _, op := range ops {
			if err := checkRequestOp(op, maxTxnOps-opc); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkRequestOp validates one txn op. An op with no request set is
// answered, as etcd does, with ErrGRPCKeyNotFound.
func checkRequestOp(op *pb.RequestOp, maxTxnOps int) error {
	switch {
	case op.GetRequestRange() != nil:
		return checkRangeRequest(op.GetRequestRange())
	case op.GetRequestPut() != nil:
		return checkPutRequest(op.GetRequestPut())
	case op.GetRequestDeleteRange() != nil:
		return checkDeleteRequest(op.GetRequestDeleteRange())
	case op.GetRequestTxn() != nil:
		return checkTxnRequest(op.GetRequestTxn(), maxTxnOps)
	default:
		return rpctypes.ErrGRPCKeyNotFound
	}
}

// writeSet is what a list of txn ops, with the txns nested in it, writes.
type writeSet struct {
	puts map[string]struct{}
	dels adt.IntervalTree
}

// everything covers every non-empty key; it selects the deletes a nested
// txn passes up to its parent.
var everything = adt.NewStringAffineInterval("\x00", "")

// checkWrites applies etcd's checkIntervals rules to one list of ops and
// returns what the list writes. It fails with ErrGRPCDuplicateKey when:
//   - a key is put twice at this level, or put here and in a nested txn;
//   - a key put at this level lies in a range deleted at this level or in
//     any nested txn;
//   - a key put in a nested txn lies in a range deleted at this level or in
//     an earlier sibling nested txn;
//   - a key is put by two nested txns, unless only by the success and the
//     failure branches of the same one (which never both run).
//
// Deletes never conflict with deletes. A delete's range is [key, range_end)
// compared as plain strings, so etcd's "\x00" (from key) range_end covers no
// key here, exactly as in etcd.
func checkWrites(ops []*pb.RequestOp) (writeSet, error) {
	ws := writeSet{puts: map[string]struct{}{}, dels: deletesOf(ops)}
	for _, op := range ops {
		if t := op.GetRequestTxn(); t != nil {
			if err := ws.addNested(t); err != nil {
				return ws, err
			}
		}
	}
	for _, op := range ops {
		if p := op.GetRequestPut(); p != nil {
			if err := ws.addPut(string(p.GetKey())); err != nil {
				return ws, err
			}
		}
	}
	return ws, nil
}

// deletesOf returns the ranges the DeleteRange ops of one level delete.
func deletesOf(ops []*pb.RequestOp) adt.IntervalTree {
	dels := adt.NewIntervalTree()
	for _, op := range ops {
		if d := op.GetRequestDeleteRange(); d != nil {
			dels.Insert(deleteInterval(d), struct{}{})
		}
	}
	return dels
}

// deleteInterval is the key interval a DeleteRange covers.
func deleteInterval(d *pb.DeleteRangeRequest) adt.Interval {
	if len(d.GetRangeEnd()) == 0 {
		return adt.NewStringAffinePoint(string(d.GetKey()))
	}
	return adt.NewStringAffineInterval(string(d.GetKey()), string(d.GetRangeEnd()))
}

// addNested merges what the nested txn t writes into ws.
func (ws *writeSet) addNested(t *pb.TxnRequest) error {
	then, err := checkWrites(t.GetSuccess())
	if err != nil {
		return err
	}
	els, err := checkWrites(t.GetFailure())
	if err != nil {
		return err
	}
	for k := range then.puts {
		if err := ws.addPut(k); err != nil {
			return err
		}
	}
	for k := range els.puts {
		if _, both := then.puts[k]; both {
			continue // added (and checked) above; the two branches never both run
		}
		if err := ws.addPut(k); err != nil {
			return err
		}
	}
	ws.dels.Union(then.dels, everything)
	ws.dels.Union(els.dels, everything)
	return nil
}

// addPut records a put of k, failing if k is already put or deleted.
func (ws *writeSet) addPut(k string) error {
	if _, dup := ws.puts[k]; dup || ws.deleted(k) {
		return rpctypes.ErrGRPCDuplicateKey
	}
	ws.puts[k] = struct{}{}
	return nil
}

// deleted reports whether k lies in a deleted range.
func (ws *writeSet) deleted(k string) bool {
	return ws.dels.Intersects(adt.NewStringAffinePoint(k))
}

// isTxnReadonly reports whether every op of both branches is a Range (etcd's
// txn.IsTxnReadonly): such a txn is served locally, without raft. A nested
// txn makes it a write, whatever it contains.
func isTxnReadonly(r *pb.TxnRequest) bool {
	return allOps(r, func(op *pb.RequestOp) bool { return op.GetRequestRange() != nil })
}

// isTxnSerializable reports whether every op of both branches is a
// serializable Range (etcd's txn.IsTxnSerializable); a txn without ops is.
func isTxnSerializable(r *pb.TxnRequest) bool {
	return allOps(r, func(op *pb.RequestOp) bool { return op.GetRequestRange().GetSerializable() })
}

// allOps reports whether ok holds for every success and failure op of r.
func allOps(r *pb.TxnRequest, ok func(*pb.RequestOp) bool) bool {
	for _, ops := range [][]*pb.RequestOp{r.GetSuccess(), r.GetFailure()} {
		for _, op := range ops {
			if !ok(op) {
				return false
			}
		}
	}
	return true
}

// headerBytes is what req's header costs once marshalled after Raft.Propose
// has set its ID (to the largest, so that the size check never
// underestimates), beside the caller stamped there by authorize.
func headerBytes(req *pb.InternalRaftRequest) int {
	h := req.GetHeader()
	return headerFieldSize(math.MaxUint64, h.GetUsername(), h.GetAuthRevision())
}

// headerFieldSize is the marshalled size of InternalRaftRequest's header
// field (number 100) holding a RequestHeader with these fields (numbers 1,
// 2 and 3), computed without building one: this runs on every write.
func headerFieldSize(id uint64, user string, rev uint64) int {
	n := 0
	if id != 0 {
		n += protowire.SizeTag(1) + protowire.SizeVarint(id)
	}
	if user != "" {
		n += protowire.SizeTag(2) + protowire.SizeBytes(len(user))
	}
	if rev != 0 {
		n += protowire.SizeTag(3) + protowire.SizeVarint(rev)
	}
	return protowire.SizeTag(100) + protowire.SizeBytes(n)
}

// checkRequestSize fails with errRequestTooLarge when req, once Propose has
// set its header's ID, is bigger than maxBytes: etcd checks the marshalled
// InternalRaftRequest, ID included, against --max-request-bytes before
// proposing it. Fields marshal independently, so sizes simply add up.
func checkRequestSize(req *pb.InternalRaftRequest, maxBytes int) error {
	size := proto.Size(req) + headerBytes(req)
	if h := req.GetHeader(); h != nil {
		size -= headerFieldSize(h.GetID(), h.GetUsername(), h.GetAuthRevision())
	}
	if size > maxBytes {
		return errRequestTooLarge
	}
	return nil
}
