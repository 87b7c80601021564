//go:build !synod_unsafe_skipgate

package statemachine

// unsafeSkipGate is false in every real build: the NOSPACE alarm gates
// every apply. See unsafe_skipgate_on.go.
const unsafeSkipGate = false
