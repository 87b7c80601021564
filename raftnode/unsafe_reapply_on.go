//go:build synod_unsafe_reapply

package raftnode

// unsafeReapply, compiled in only with `-tags synod_unsafe_reapply`,
// deliberately applies again, after a restart, the entries raft replays from
// the last snapshot (mvcc has the matching switch). It exists so that tests
// can show that `synod check` catches an entry applied twice after a
// restart; never ship a build with this tag.
const unsafeReapply = true
