//go:build !synod_unsafe_reapply

package simulation

// unsafeReapply mirrors raftnode's switch of the same name: false in every
// real build.
const unsafeReapply = false
