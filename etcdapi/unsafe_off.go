//go:build !synod_unsafe

package etcdapi

import "context"

// unsafeSkipReadIndex is false in every real build: linearizable reads
// wait for a ReadIndex barrier. See unsafe_on.go.
func (e *edge) unsafeSkipReadIndex(context.Context) bool { return false }
