package server

import (
	"github.com/cockroachdb/pebble/v2"

	"github.com/synod-db/synod/metrics"
	"github.com/synod-db/synod/storage"
)

// disk is the member's two Pebble databases
// (docs/architecture.md#two-pebble-databases-per-member): db holds the
// state, which the state machine keeps, and logDB the raft log, served by
// logStore. Each database's write stalls are counted for /metrics.
// db's block cache grows with it (budget).
type disk struct {
	db       *pebble.DB
	budget   *cacheBudget // db's block cache, sized by sampleDBSize
	logDB    *pebble.DB
	logStore *storage.LogStore
	stalls   struct{ state, log *metrics.WriteStalls }
}
