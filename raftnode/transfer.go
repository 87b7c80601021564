package raftnode

import (
	"context"

	"go.etcd.io/raft/v3"
)

// MoveLeader hands leadership to the voting member target and waits until
// this member sees target as leader, as etcd's MoveLeader. It must run on the
// leader (ErrNotLeader otherwise); a target that is not a voter is
// ErrBadTransferee; if the caller's context ends first, ErrTransferTimeout.
// A transfer to the current leader returns at once.
func (n *Node) MoveLeader(ctx context.Context, target uint64) error {
	if !n.IsLeader() {
		return ErrNotLeader
	}
	var voter, leader bool
	err := n.onLoop(ctx, func(rn *raft.RawNode) {
		st := rn.Status()
		leader = st.RaftState == raft.StateLeader
		_, voter = st.Config.Voters.IDs()[target]
		if leader && voter && target != n.c.cfg.ID {
			rn.TransferLeader(target)
		}
	})
	switch {
	case err != nil:
		return err
	case !leader:
		return ErrNotLeader
	case !voter:
		return ErrBadTransferee
	}
	for {
		changed := n.LeaderChanged()
		if n.c.lead.Load() == target {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ErrTransferTimeout
		case <-n.done:
			return ErrStopped
		}
	}
}
