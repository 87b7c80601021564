//go:build !synod_unsafe_nostatesync

package raftnode

// unsafeNoStateSync is false in every real build: the state is synced
// before the log is truncated. See unsafe_nostatesync_on.go.
const unsafeNoStateSync = false
