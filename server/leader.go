package server

import (
	"context"
)

// TransferLeadership asks the current leader, through this member's raft
// loop, to hand leadership to the member transferee (etcd's MoveLeader). It
// returns once the request is handed to raft, not once the transfer is done;
// callers wait for Leader to change. Tests use it to force a leader change.
func (m *Member) TransferLeadership(ctx context.Context, transferee uint64) error {
	return m.node.TransferLeadership(ctx, transferee)
}
