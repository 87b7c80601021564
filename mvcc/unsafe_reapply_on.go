//go:build synod_unsafe_reapply

package mvcc

// unsafeReapply, compiled in only with `-tags synod_unsafe_reapply`,
// deliberately breaks the state machine: Apply no longer skips entries at or
// below the applied index, so the entries raft replays after a restart (those
// after the last raft snapshot) are applied a second time, bumping
// revisions and rewriting keys. It exists so that tests can show that
// `synod check` catches an entry applied twice after a restart; never ship a
// build with this tag. raftnode has the matching switch.
const unsafeReapply = true
