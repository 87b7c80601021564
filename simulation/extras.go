package simulation

import (
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/kvmodel"
)

// The rest of the workload, kept out of the register history: multi-key
// transactions, compactions, and the NOSPACE alarm, with the checks that
// judge them.

// Multi-key transactions write keys "t0".."t3" of their own.
const (
	numTxnKeys = 4
	txnShare   = 10 // percent of client calls that are multi-key txns
)

// nextTxn issues a transaction that puts two of the txn keys and deletes a
// third in one revision. Its acknowledged writes join the lost-write check;
// the watch check sees its events share a revision.
func (cl *client) nextTxn(m *member) {
	c := cl.c
	cl.n++
	perm := c.rng.Perm(numTxnKeys)
	val := fmt.Sprintf("c%d-%d", cl.id, cl.n)
	keys := []string{fmt.Sprintf("t%d", perm[0]), fmt.Sprintf("t%d", perm[1]), fmt.Sprintf("t%d", perm[2])}
	put := func(k string) *pb.RequestOp {
		return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(k), Value: []byte(val)}}}
	}
	del := &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte(keys[2])}}}
	req := &pb.InternalRaftRequest{Txn: &pb.TxnRequest{Success: []*pb.RequestOp{put(keys[0]), put(keys[1]), del}}}
	start := c.stamp()
	desc := fmt.Sprintf("txn(put %s, %s = %q; delete %s)", keys[0], keys[1], val, keys[2])
	cc := &call{id: c.nextID(), req: req}
	cc.onDone = func(o outcome, resp proto.Message) {
		if o == outcomeOK {
			rev := resp.(*pb.TxnResponse).GetHeader().GetRevision()
			c.acked = append(c.acked, ackedWrite{key: keys[0], value: val, rev: rev}, ackedWrite{key: keys[1], value: val, rev: rev},
				ackedWrite{key: keys[2], rev: rev, deleted: true})
			c.puts = append(c.puts, putCall{call: start, ret: c.stamp(), desc: desc})
		}
		c.tracef("txn call c%d %s: outcome %d", cl.id, desc, o)
		c.sched.after(Time(c.rng.IntN(maxThink+1)), cl.next)
	}
	c.tracef("call c%d %s on %x", cl.id, desc, m.id)
	c.sched.after(clientTimeout, func() { cc.finish(outcomeUnknown, nil) })
	c.fail(m.propose(cc))
}

// compact proposes a compaction to a revision some way behind the current
// one on a random live member, as auto compaction would.
func (c *cluster) compact() {
	m := c.randomLiveMember()
	if m == nil {
		return
	}
	kv := m.sm.KV()
	rev := kv.Rev() - int64(5+c.rng.IntN(20))
	if rev <= kv.CompactRev() {
		return
	}
	c.tracef("propose compaction to %d on %x", rev, m.id)
	cc := &call{id: c.nextID(), req: &pb.InternalRaftRequest{Compaction: &pb.CompactionRequest{Revision: rev}}}
	cc.onDone = func(o outcome, _ proto.Message) { c.tracef("compaction to %d: outcome %d", rev, o) }
	c.sched.after(clientTimeout, func() { cc.finish(outcomeUnknown, nil) })
	c.fail(m.propose(cc))
}

// alarmWindow is a time, in history stamps, during which a NOSPACE alarm
// was certainly raised: from the acknowledgement of its activation to the
// first call that disarms it.
type alarmWindow struct{ from, to int64 }

// putCall is an acknowledged write that puts a key, outside the register
// history (a multi-key txn).
type putCall struct {
	call, ret int64
	desc      string
}

// raiseNoSpace raises the NOSPACE alarm, as a member whose disk filled up
// does, and disarms it a little later (retrying until it is disarmed).
func (c *cluster) raiseNoSpace() {
	m := c.randomLiveMember()
	if m == nil || c.alarmed {
		return
	}
	c.alarmed = true
	c.tracef("propose NOSPACE alarm for %x on %x", m.id, m.id)
	id := m.id
	cc := &call{id: c.nextID(), req: alarmRequest(pb.AlarmRequest_ACTIVATE, id)}
	cc.onDone = func(o outcome, _ proto.Message) {
		from := int64(-1)
		if o == outcomeOK {
			from = c.stamp()
		}
		c.tracef("NOSPACE alarm raised: outcome %d", o)
		c.sched.after(Time(50+c.rng.IntN(250)), func() { c.disarm(id, from, -1) })
	}
	c.sched.after(clientTimeout, func() { cc.finish(outcomeUnknown, nil) })
	c.fail(m.propose(cc))
}

// disarm deactivates the NOSPACE alarm of member id, again and again until
// a call succeeds; the first call ends the alarm's certain window.
func (c *cluster) disarm(id uint64, from, to int64) {
	m := c.randomLiveMember()
	if m == nil {
		c.sched.after(10, func() { c.disarm(id, from, to) })
		return
	}
	if to < 0 {
		to = c.stamp()
		if from >= 0 {
			c.alarms = append(c.alarms, alarmWindow{from: from, to: to})
		}
	}
	c.tracef("propose NOSPACE disarm for %x on %x", id, m.id)
	cc := &call{id: c.nextID(), req: alarmRequest(pb.AlarmRequest_DEACTIVATE, id)}
	cc.onDone = func(o outcome, _ proto.Message) {
		c.tracef("NOSPACE alarm disarmed: outcome %d", o)
		if o != outcomeOK {
			c.sched.after(20, func() { c.disarm(id, from, to) })
			return
		}
		c.alarmed = false
	}
	c.sched.after(clientTimeout, func() { cc.finish(outcomeUnknown, nil) })
	c.fail(m.propose(cc))
}

func alarmRequest(a pb.AlarmRequest_AlarmAction, id uint64) *pb.InternalRaftRequest {
	return &pb.InternalRaftRequest{Alarm: &pb.AlarmRequest{Action: a, MemberID: id, Alarm: pb.AlarmType_NOSPACE}}
}

// checkAlarms: no write that puts a key is acknowledged when it was both
// called and answered while a NOSPACE alarm was certainly raised (etcd
// refuses puts until the alarm is disarmed).
func (c *cluster) checkAlarms() []string {
	var out []string
	judge := func(call, ret int64, desc string) {
		for _, w := range c.alarms {
			if call > w.from && ret < w.to && len(out) < 10 {
				out = append(out, fmt.Sprintf("%s acknowledged at [%d,%d] while a NOSPACE alarm was raised [%d,%d]", desc, call, ret, w.from, w.to))
			}
		}
	}
	for _, op := range c.history {
		in, res := op.Input.(kvmodel.RegInput), op.Output.(kvmodel.RegOutput)
		puts := in.Op == kvmodel.OpPut || ((in.Op == kvmodel.OpCASValue || in.Op == kvmodel.OpCASRev) && res.Ok)
		if puts && op.Return >= 0 && !res.Unknown {
			judge(op.Call, op.Return, kvmodel.Register.DescribeOperation(in, res))
		}
	}
	for _, p := range c.puts {
		judge(p.call, p.ret, p.desc)
	}
	return out
}
