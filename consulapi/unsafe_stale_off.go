//go:build !synod_unsafe_consulstale

package consulapi

// unsafeStaleDefault is false in every real build: default reads are
// linearizable. See unsafe_stale_on.go.
const unsafeStaleDefault = false
