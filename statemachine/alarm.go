package statemachine

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/synod-db/synod/mvcc"
	"github.com/synod-db/synod/raftnode"
)

// applyAlarm applies a committed AlarmRequest: the alarm set changes in
// the run's batch, identically on every member.
func (m *Machine) applyAlarm(g *mvcc.Group, index, term uint64, r *pb.AlarmRequest) (raftnode.Result, error) {
	var resp *pb.AlarmResponse
	err := g.ApplyOther(index, term, func(b *pebble.Batch) error {
		var err error
		resp, err = m.alarms.Apply(b, r)
		return err
	})
	if err != nil {
		return raftnode.Result{}, err
	}
	if resp == nil { // an entry already applied before a restart
		resp = &pb.AlarmResponse{}
	}
	if r.GetAction() != pb.AlarmRequest_GET && len(resp.Alarms) > 0 {
		m.log.Warn("alarm changed", "action", r.GetAction().String(), "alarm", r.GetAlarm().String(),
			"member-id", fmt.Sprintf("%x", r.GetMemberID()))
	}
	return raftnode.Result{Resp: resp}, nil
}
