//go:build !synod_unsafe

package etcdapi

// unsafeLocalReads is false in every real build: linearizable reads wait
// for a ReadIndex barrier. See unsafe_on.go.
const unsafeLocalReads = false
