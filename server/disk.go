package server

import (
	"github.com/cockroachdb/pebble/v2"

	"github.com/synod-db/synod/storage"
)

// disk is the member's one Pebble database and the raft log stored in it
// (docs/architecture.md#one-pebble-database-per-member); the state machine
// holds the rest of it.
type disk struct {
	db       *pebble.DB
	logStore *storage.LogStore
}
