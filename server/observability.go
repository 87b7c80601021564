package server

import (
	"github.com/synod-db/synod/audit"
	"github.com/synod-db/synod/metrics"
	"github.com/synod-db/synod/tracing"
)

// observability is what the member reports through: its metrics registry,
// the audit log and the tracing pipeline.
type observability struct {
	metrics *metrics.Set
	audit   *audit.Log        // --audit-log, nil when off
	tracer  *tracing.Provider // --enable-distributed-tracing, nil when off (tracing.go)
}
