package mvcc

import (
	"bytes"
	"context"
	"errors"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// ErrTxnNotReadOnly is returned by ReadTxn for a txn that has an op (at any
// depth) other than a range. It is a caller error: such a txn must go through
// raft and Apply.
var ErrTxnNotReadOnly = errors.New("mvcc: txn is not read-only")

// txnState evaluates ops against one read view. w is nil for read-only
// evaluation; otherwise reads go through w's indexed batch and see its writes.
type txnState struct {
	ctx         context.Context
	src         iterSource
	prefix      bool // src's DB orders with Comparer (visitKey)
	w           *writer
	beginRev    int64
	compactRev  int64
	leaseExists func(int64) bool
}

// readRev is the revision reads in the txn see: etcd reads at beginRev+1
// once the txn has written.
func (t *txnState) readRev() int64 {
	if t.w != nil && t.w.changes > 0 {
		return t.beginRev + 1
	}
	return t.beginRev
}

// txnPlan is the branch every (nested) txn takes, decided, as etcd does,
// against the state before the outermost txn runs.
type txnPlan struct {
	succeeded bool
	nested    []*txnPlan // one per RequestTxn op of the taken branch, in order
}

func branch(rt *pb.TxnRequest, succeeded bool) []*pb.RequestOp {
	if succeeded {
		return rt.GetSuccess()
	}
	return rt.GetFailure()
}

// plan evaluates the compares of rt and of every nested txn on the taken path.
func (t *txnState) plan(rt *pb.TxnRequest) (*txnPlan, error) {
	ok, err := t.compares(rt.GetCompare())
	if err != nil {
		return nil, err
	}
	p := &txnPlan{succeeded: ok}
	for _, op := range branch(rt, ok) {
		if r, isTxn := op.GetRequest().(*pb.RequestOp_RequestTxn); isTxn {
			np, err := t.plan(r.RequestTxn)
			if err != nil {
				return nil, err
			}
			p.nested = append(p.nested, np)
		}
	}
	return p, nil
}

func (t *txnState) compares(cmps []*pb.Compare) (bool, error) {
	for _, c := range cmps {
		ok, err := t.compare(c)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// compare holds if it holds for every key in range; on no key, VALUE fails
// and the other targets compare against a zero KeyValue.
func (t *txnState) compare(c *pb.Compare) (bool, error) {
	var kv mvccpb.KeyValue
	if t.cachedLatest(c, &kv) {
		return compareKV(c, &kv), nil
	}
	rr, err := rangeKeys(t.ctx, t.src, c.Key, c.RangeEnd, t.readRev(), t.compactRev, rangeOpts{})
	if err != nil {
		return false, err
	}
	if len(rr.kvs) == 0 {
		if c.Target == pb.Compare_VALUE {
			return false, nil
		}
		return compareKV(c, &mvccpb.KeyValue{}), nil
	}
	for _, kv := range rr.kvs {
		if !compareKV(c, kv) {
			return false, nil
		}
	}
	return true, nil
}

// cachedLatest fills kv from the generation cache, when it can answer c:
// a compare on one key's create, mod, version or lease revision, inside the
// apply path (the cache belongs to it) before the txn wrote anything (the
// cache then describes the state the txn reads). A key the cache knows as
// deleted compares as a missing key does, against a zero KeyValue. Under a
// CAS load (etcd's stm benchmark) the compares' seeks into the batch, the
// memtables and the levels were a fifth of the leader's CPU.
func (t *txnState) cachedLatest(c *pb.Compare, kv *mvccpb.KeyValue) bool {
	if t.w == nil || t.w.changes > 0 || len(c.GetRangeEnd()) > 0 || c.Target == pb.Compare_VALUE {
		return false
	}
	g, ok := t.w.gens.get(c.Key)
	switch {
	case !ok:
		return false
	case !g.live:
		return true
	}
	kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease = g.create, g.mod, g.version, g.lease
	return true
}

func compareKV(c *pb.Compare, kv *mvccpb.KeyValue) bool {
	var result int
	switch c.Target {
	case pb.Compare_VALUE:
		result = bytes.Compare(kv.Value, c.GetValue())
	case pb.Compare_CREATE:
		result = compareInt64(kv.CreateRevision, c.GetCreateRevision())
	case pb.Compare_MOD:
		result = compareInt64(kv.ModRevision, c.GetModRevision())
	case pb.Compare_VERSION:
		result = compareInt64(kv.Version, c.GetVersion())
	case pb.Compare_LEASE:
		result = compareInt64(kv.Lease, c.GetLease())
	}
	switch c.Result {
	case pb.Compare_EQUAL:
		return result == 0
	case pb.Compare_NOT_EQUAL:
		return result != 0
	case pb.Compare_GREATER:
		return result > 0
	case pb.Compare_LESS:
		return result < 0
	}
	return true
}

func compareInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// check validates the ops of the taken path before anything runs, against
// the pre-txn view (etcd's checkTxn): range revisions, put leases and
// ignore_value/ignore_lease on missing keys.
func (t *txnState) check(rt *pb.TxnRequest, p *txnPlan) error {
	nested := p.nested
	for _, op := range branch(rt, p.succeeded) {
		var err error
		switch r := op.GetRequest().(type) {
		case *pb.RequestOp_RequestRange:
			err = checkRangeRev(r.RequestRange.GetRevision(), t.beginRev, t.compactRev)
		case *pb.RequestOp_RequestPut:
			err = t.checkPut(orEmpty(r.RequestPut))
		case *pb.RequestOp_RequestTxn:
			err = t.check(r.RequestTxn, nested[0])
			nested = nested[1:]
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func checkRangeRev(rev, curRev, compactRev int64) error {
	switch {
	case rev == 0:
		return nil
	case rev > curRev:
		return ErrFutureRev
	case rev < compactRev:
		return ErrCompacted
	}
	return nil
}

func (t *txnState) checkPut(p *pb.PutRequest) error {
	if err := t.checkLease(p.Lease); err != nil {
		return err
	}
	if !p.IgnoreValue && !p.IgnoreLease {
		return nil
	}
	prev, err := getKV(t.src, t.prefix, p.Key, t.readRev())
	if err != nil {
		return err
	}
	if prev == nil {
		return ErrKeyNotFound
	}
	return nil
}

func (t *txnState) checkLease(id int64) error {
	if id == 0 || (t.leaseExists != nil && t.leaseExists(id)) {
		return nil
	}
	return ErrLeaseNotFound
}

// txn runs a whole txn: plan, check, execute. The response header revision
// is the store revision after the txn.
func (t *txnState) txn(rt *pb.TxnRequest) (*pb.TxnResponse, error) {
	p, err := t.plan(rt)
	if err != nil {
		return nil, err
	}
	if err := t.check(rt, p); err != nil {
		return nil, err
	}
	resp, err := t.exec(rt, p)
	if err != nil {
		return nil, err
	}
	resp.Header.Revision = t.readRev()
	return resp, nil
}

// exec runs the ops of the taken branch in order. Nested txn responses carry
// an empty header, as etcd's.
func (t *txnState) exec(rt *pb.TxnRequest, p *txnPlan) (*pb.TxnResponse, error) {
	ops := branch(rt, p.succeeded)
	resp := &pb.TxnResponse{Header: &pb.ResponseHeader{}, Succeeded: p.succeeded, Responses: make([]*pb.ResponseOp, len(ops))}
	nested := p.nested
	for i, op := range ops {
		var err error
		ro := &pb.ResponseOp{}
		switch r := op.GetRequest().(type) {
		case *pb.RequestOp_RequestRange:
			var rr *pb.RangeResponse
			rr, err = executeRange(t.ctx, t.src, orEmpty(r.RequestRange), t.readRev(), t.compactRev)
			ro.Response = &pb.ResponseOp_ResponseRange{ResponseRange: rr}
		case *pb.RequestOp_RequestPut:
			var pr *pb.PutResponse
			pr, err = t.put(orEmpty(r.RequestPut))
			ro.Response = &pb.ResponseOp_ResponsePut{ResponsePut: pr}
		case *pb.RequestOp_RequestDeleteRange:
			var dr *pb.DeleteRangeResponse
			dr, err = t.deleteRange(orEmpty(r.RequestDeleteRange))
			ro.Response = &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: dr}
		case *pb.RequestOp_RequestTxn:
			var tr *pb.TxnResponse
			tr, err = t.exec(r.RequestTxn, nested[0])
			nested = nested[1:]
			ro.Response = &pb.ResponseOp_ResponseTxn{ResponseTxn: tr}
		}
		if err != nil {
			return nil, err
		}
		resp.Responses[i] = ro
	}
	return resp, nil
}

// put writes one key (the lease was checked before). ignore_value and
// ignore_lease take the previous kv's value/lease; ErrKeyNotFound if none.
func (t *txnState) put(p *pb.PutRequest) (*pb.PutResponse, error) {
	if t.w == nil {
		return nil, ErrTxnNotReadOnly
	}
	var prev *mvccpb.KeyValue
	if p.IgnoreValue || p.IgnoreLease || p.PrevKv {
		var err error
		if prev, err = getKV(t.src, t.prefix, p.Key, t.readRev()); err != nil {
			return nil, err
		}
	}
	val, lease := p.Value, p.Lease
	if p.IgnoreValue || p.IgnoreLease {
		if prev == nil {
			return nil, ErrKeyNotFound
		}
		if p.IgnoreValue {
			val = prev.Value
		}
		if p.IgnoreLease {
			lease = prev.Lease
		}
	}
	resp := &pb.PutResponse{Header: &pb.ResponseHeader{}}
	if p.PrevKv && prev != nil {
		resp.PrevKv = prev
	}
	if err := t.w.put(p.Key, val, lease); err != nil {
		return nil, err
	}
	resp.Header.Revision = t.beginRev + 1
	return resp, nil
}

// deleteRange tombstones every key live in range at the txn's read revision.
// The header revision moves only if the txn has written.
func (t *txnState) deleteRange(dr *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	if t.w == nil {
		return nil, ErrTxnNotReadOnly
	}
	rr, err := rangeKeys(t.ctx, t.src, dr.Key, dr.RangeEnd, t.readRev(), t.compactRev, rangeOpts{})
	if err != nil {
		return nil, err
	}
	resp := &pb.DeleteRangeResponse{Header: &pb.ResponseHeader{}}
	if dr.PrevKv {
		resp.PrevKvs = rr.kvs
	}
	for _, kv := range rr.kvs {
		if err := t.w.tombstone(kv.Key, kv.Lease); err != nil {
			return nil, err
		}
	}
	resp.Deleted = int64(len(rr.kvs))
	resp.Header.Revision = t.readRev()
	return resp, nil
}

// isReadOnlyTxn reports whether every op of rt, at any depth, is a range.
func isReadOnlyTxn(rt *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{rt.GetSuccess(), rt.GetFailure()} {
		for _, op := range ops {
			switch r := op.GetRequest().(type) {
			case *pb.RequestOp_RequestRange:
			case *pb.RequestOp_RequestTxn:
				if !isReadOnlyTxn(r.RequestTxn) {
					return false
				}
			default:
				return false
			}
		}
	}
	return true
}

// isSingleRangeTxn reports whether rt has no compare and one op, a range:
// its evaluation opens exactly one iterator.
func isSingleRangeTxn(rt *pb.TxnRequest) bool {
	if len(rt.GetCompare()) > 0 || len(rt.GetSuccess()) != 1 {
		return false
	}
	_, ok := rt.GetSuccess()[0].GetRequest().(*pb.RequestOp_RequestRange)
	return ok
}

// orEmpty turns a nil request (possible only in-process: gRPC never decodes a
// set oneof into nil) into an empty one, so evaluation never dereferences nil.
func orEmpty[T any, P interface{ *T }](p P) P {
	if p == nil {
		return new(T)
	}
	return p
}
