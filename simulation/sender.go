package simulation

import (
	"bytes"
	"io"

	"github.com/synod-db/synod/raftnode"

	"go.etcd.io/raft/v3/raftpb"
)

// heldMsg is a message on its way to a member: a snapshot's stream travels
// beside its message, as synod's transport streams it.
type heldMsg struct {
	msg  *raftpb.Message
	body io.Reader // a MsgSnap's stream, nil otherwise
}

// sender is a member's raftnode.Sender on the simulated network.
type sender struct {
	m    *member
	core *raftnode.Core
}

// Send puts each message on the wire.
func (s sender) Send(msgs []*raftpb.Message) {
	for _, msg := range msgs {
		s.m.c.net.send(msg)
	}
}

// SendSnapshot reads the whole stream now (the state as applied at this
// instant, which is what raftnode sends) and delivers it with its message;
// the sender's Core learns whether it arrived, as the transport reports.
func (s sender) SendSnapshot(msg *raftpb.Message, body io.WriterTo, done func(error)) {
	var buf bytes.Buffer
	_, err := body.WriteTo(&buf)
	if done != nil {
		defer done(err)
	}
	if err != nil {
		s.m.c.fail(err)
		return
	}
	m, core, to := s.m, s.core, msg.GetTo()
	m.c.tracef("send snapshot %x→%x at %d (%d bytes)", m.id, to, msg.GetSnapshot().GetMetadata().GetIndex(), buf.Len())
	data := buf.Bytes()
	m.c.net.sendReport(msg, data, func(delivered bool) {
		if m.core != core { // crashed and restarted since
			return
		}
		core.ReportSnapshot(to, !delivered)
		m.c.fail(m.process())
	})
}
