package statemachine

import (
	"github.com/cockroachdb/pebble/v2"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/synod-db/synod/mvcc"
	"github.com/synod-db/synod/raftnode"
)

// applyAuth applies a committed auth change in the run's batch,
// identically on every member.
func (m *Machine) applyAuth(g *mvcc.Group, index, term uint64, req *pb.InternalRaftRequest) (raftnode.Result, error) {
	var res raftnode.Result
	err := g.ApplyOther(index, term, func(b *pebble.Batch) error {
		resp, reqErr, err := m.auth.Apply(b, req)
		res = raftnode.Result{Resp: resp, Err: reqErr}
		return err
	})
	if err != nil {
		return raftnode.Result{}, err
	}
	if res.Resp != nil {
		m.log.Info("auth changed", "revision", m.auth.Revision(), "by", req.GetHeader().GetUsername())
	}
	return res, nil
}
