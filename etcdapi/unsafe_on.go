//go:build synod_unsafe

package etcdapi

// unsafeLocalReads, compiled in only with `-tags synod_unsafe`, deliberately
// breaks linearizability: every read is served from the local state without
// a ReadIndex barrier, so a member cut off from the leader (or a deposed
// leader) answers with stale data. It exists so that tests can show that
// `synod check` catches a real safety bug; never ship a build with this tag.
const unsafeLocalReads = true
