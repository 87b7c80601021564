package simulation

import (
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/kvmodel"
)

// Workload shape.
const (
	numKeys       = 4    // keys share a small pool, so clients contend
	clientTimeout = 1000 // ms before a call's outcome is unknown
	maxThink      = 20   // ms a client waits between calls
	leaseShare    = 15   // percent of calls that are lease calls (lease.go)
)

// client issues one call at a time to a random live member.
type client struct {
	id   int
	n    int
	seen map[string]kvmodel.RegOutput // last observed value and revision per key (lookups only)
	c    *cluster
}

// next issues the client's next call, unless the workload has ended.
func (cl *client) next() {
	c := cl.c
	if c.sched.now >= c.workloadEnd {
		return
	}
	m := c.randomLiveMember()
	if m == nil {
		c.sched.after(10, cl.next)
		return
	}
	switch r := c.rng.IntN(100); {
	case r < leaseShare:
		cl.nextLease(m)
		return
	case r < leaseShare+txnShare:
		cl.nextTxn(m)
		return
	}
	in := cl.pickOp()
	req := buildRequest(in)
	start := c.stamp()
	cc := &call{id: c.nextID(), req: req}
	cc.onDone = func(o outcome, resp proto.Message) { cl.done(in, start, o, resp) }
	c.tracef("call c%d %s on %x", cl.id, describe(in), m.id)
	c.sched.after(clientTimeout, func() { cc.finish(outcomeUnknown, nil) })
	var err error
	if in.Op == kvmodel.OpGet {
		err = m.readIndex(cc)
	} else {
		err = m.propose(cc)
	}
	c.fail(err)
}

// nextLease issues a lease call on m; it is kept out of the history.
func (cl *client) nextLease(m *member) {
	c := cl.c
	cl.n++
	req, desc := cl.leaseOp()
	cc := &call{id: c.nextID(), req: req}
	cc.onDone = func(o outcome, _ proto.Message) {
		c.leaseDone(req, o)
		c.tracef("lease call c%d %s: outcome %d", cl.id, desc, o)
		c.sched.after(Time(c.rng.IntN(maxThink+1)), cl.next)
	}
	c.tracef("call c%d %s on %x", cl.id, desc, m.id)
	c.sched.after(clientTimeout, func() { cc.finish(outcomeUnknown, nil) })
	c.fail(m.propose(cc))
}

// pickOp draws the next operation: gets, puts, compare-and-sets on value
// or mod_revision (against what this client last saw) and deletes.
func (cl *client) pickOp() kvmodel.RegInput {
	c := cl.c
	cl.n++
	key := fmt.Sprintf("k%d", c.rng.IntN(numKeys))
	val := fmt.Sprintf("c%d-%d", cl.id, cl.n)
	last := cl.seen[key]
	switch r := c.rng.IntN(100); {
	case r < 35:
		return kvmodel.RegInput{Op: kvmodel.OpGet, Key: key}
	case r < 60:
		return kvmodel.RegInput{Op: kvmodel.OpPut, Key: key, Value: val}
	case r < 72:
		return kvmodel.RegInput{Op: kvmodel.OpCASValue, Key: key, Expect: last.Value, Value: val}
	case r < 87:
		return kvmodel.RegInput{Op: kvmodel.OpCASRev, Key: key, ExpectRev: last.Rev, Value: val}
	default:
		return kvmodel.RegInput{Op: kvmodel.OpDelete, Key: key}
	}
}

// done records a finished call in the history and schedules the next.
func (cl *client) done(in kvmodel.RegInput, start int64, o outcome, resp proto.Message) {
	c := cl.c
	switch o {
	case outcomeOK:
		out := toOutput(in, resp)
		c.record(cl.id, in, out, start, c.stamp())
		cl.seen[in.Key] = out
		if in.Op != kvmodel.OpGet && (in.Op == kvmodel.OpPut || out.Ok) {
			c.acked = append(c.acked, ackedWrite{key: in.Key, value: in.Value, rev: out.Rev, deleted: in.Op == kvmodel.OpDelete})
		}
		c.tracef("done c%d %s", cl.id, kvmodel.Register.DescribeOperation(in, out))
	case outcomeUnknown:
		if in.Op != kvmodel.OpGet { // a read of unknown outcome says nothing
			c.record(cl.id, in, kvmodel.RegOutput{Unknown: true}, start, -1)
		}
		c.tracef("unknown c%d %s", cl.id, describe(in))
	default:
		c.tracef("failed c%d %s", cl.id, describe(in))
	}
	c.sched.after(Time(c.rng.IntN(maxThink+1)), cl.next)
}

// buildRequest is the etcd request for a register operation.
func buildRequest(in kvmodel.RegInput) *pb.InternalRaftRequest {
	key := []byte(in.Key)
	put := &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: key, Value: []byte(in.Value)}}}
	get := &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: key}}}
	switch in.Op {
	case kvmodel.OpGet:
		return &pb.InternalRaftRequest{Range: &pb.RangeRequest{Key: key}}
	case kvmodel.OpPut:
		return &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: key, Value: []byte(in.Value)}}
	case kvmodel.OpDelete:
		return &pb.InternalRaftRequest{DeleteRange: &pb.DeleteRangeRequest{Key: key}}
	case kvmodel.OpCASValue:
		cmp := &pb.Compare{Key: key, Target: pb.Compare_VALUE, Result: pb.Compare_EQUAL,
			TargetUnion: &pb.Compare_Value{Value: []byte(in.Expect)}}
		return &pb.InternalRaftRequest{Txn: &pb.TxnRequest{Compare: []*pb.Compare{cmp}, Success: []*pb.RequestOp{put}, Failure: []*pb.RequestOp{get}}}
	default: // OpCASRev
		cmp := &pb.Compare{Key: key, Target: pb.Compare_MOD, Result: pb.Compare_EQUAL,
			TargetUnion: &pb.Compare_ModRevision{ModRevision: in.ExpectRev}}
		return &pb.InternalRaftRequest{Txn: &pb.TxnRequest{Compare: []*pb.Compare{cmp}, Success: []*pb.RequestOp{put}, Failure: []*pb.RequestOp{get}}}
	}
}

// toOutput reads the model's output from an etcd response.
func toOutput(in kvmodel.RegInput, resp proto.Message) kvmodel.RegOutput {
	switch r := resp.(type) {
	case *pb.RangeResponse:
		return rangeOutput(r)
	case *pb.PutResponse:
		return kvmodel.RegOutput{Rev: r.GetHeader().GetRevision()}
	case *pb.DeleteRangeResponse:
		return kvmodel.RegOutput{Ok: r.GetDeleted() > 0, Rev: r.GetHeader().GetRevision()}
	case *pb.TxnResponse:
		if r.GetSucceeded() {
			return kvmodel.RegOutput{Ok: true, Rev: r.GetHeader().GetRevision()}
		}
		if rs := r.GetResponses(); len(rs) == 1 {
			return rangeOutput(rs[0].GetResponseRange())
		}
	}
	return kvmodel.RegOutput{Value: fmt.Sprintf("<unexpected %T for %s>", resp, describe(in))}
}

func rangeOutput(r *pb.RangeResponse) kvmodel.RegOutput {
	if kvs := r.GetKvs(); len(kvs) == 1 {
		return kvmodel.RegOutput{Value: string(kvs[0].GetValue()), Rev: kvs[0].GetModRevision()}
	}
	return kvmodel.RegOutput{}
}

// describe is an operation as called, for the trace.
func describe(in kvmodel.RegInput) string {
	d := kvmodel.Register.DescribeOperation(in, kvmodel.RegOutput{Unknown: true})
	return d[:len(d)-len(" → ?")]
}
