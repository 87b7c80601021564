//go:build !synod_unsafe_reapply

package mvcc

// unsafeReapply is false in every real build: an entry at or below the
// applied index is never applied again. See unsafe_reapply_on.go.
const unsafeReapply = false
