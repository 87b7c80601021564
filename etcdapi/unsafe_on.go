//go:build synod_unsafe

package etcdapi

import "context"

// unsafeSkipReadIndex, compiled in only with `-tags synod_unsafe`,
// deliberately breaks linearizability the way a leader lease without the
// lease would: a member that believes it is the leader serves linearizable
// reads from its local state without a ReadIndex quorum round. A deposed
// leader that has not yet heard of its successor (paused, or cut off from
// the majority) then answers with stale data. Followers still use ReadIndex,
// so without faults the build looks correct. It exists so that tests can
// show that `synod check` catches a real safety bug under faults; never ship
// a build with this tag.
func (e *edge) unsafeSkipReadIndex(ctx context.Context) bool {
	st, err := e.b.Maintenance.Status(ctx)
	return err == nil && st.GetLeader() != 0 && st.GetLeader() == e.b.Member.Header().GetMemberId()
}
