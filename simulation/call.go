package simulation

import (
	"github.com/synod-db/synod/raftnode"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"
)

// outcome is how a client call ended.
type outcome uint8

const (
	outcomeOK      outcome = iota // answered
	outcomeFailed                 // certainly had no effect (refused, or a read that was not served)
	outcomeUnknown                // may or may not have taken effect (timeout, member crash)
)

// call is one client request in flight on a member.
type call struct {
	id     uint64
	req    *etcdserverpb.InternalRaftRequest
	res    <-chan raftnode.Result     // for writes: where this member's Core answers
	read   <-chan raftnode.ReadResult // for reads: where the read index arrives
	readAt uint64                     // for reads: the read index, once raft has confirmed it
	done   bool
	onDone func(outcome, proto.Message)
}

// finish ends the call once; later finishes (a late apply after a timeout)
// are ignored.
func (c *call) finish(o outcome, resp proto.Message) {
	if c.done {
		return
	}
	c.done = true
	c.onDone(o, resp)
}
