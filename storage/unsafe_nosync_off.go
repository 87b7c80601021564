//go:build !synod_unsafe_nosync

package storage

// unsafeNoSync is false in every real build: Save and ApplySnapshot fsync
// when asked to. See unsafe_nosync_on.go.
const unsafeNoSync = false
