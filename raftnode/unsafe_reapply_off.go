//go:build !synod_unsafe_reapply

package raftnode

// unsafeReapply is false in every real build: entries at or below the
// applied index are not applied again after a restart. See
// unsafe_reapply_on.go.
const unsafeReapply = false
