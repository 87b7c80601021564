//go:build !synod_unsafe_watchorder

package statemachine

// unsafeWatchOrder is false in every real build: watchers get a run's
// revisions in order. See unsafe_watchorder_on.go.
const unsafeWatchOrder = false
