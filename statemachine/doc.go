// Package statemachine is a member's replicated state machine: it applies
// committed raft entries to the stores that hold the state (mvcc's
// keyspace, the lessor, auth, alarms and the membership) on one Pebble
// database. Machine implements raftnode.Applier.
//
// Every run of committed normal entries is applied through one mvcc.Group,
// so one Pebble batch commit whatever the run holds (a compaction, which
// waits on the physical compactor, commits what the group holds before
// it). Each gate is written once: the CORRUPT and NOSPACE alarms and the
// auth check of the proposer's user and auth revision (gate.go), the
// membership verdict on a configuration change (confchange.go). The
// results go back to raftnode for the proposers; the events of a run go
// to the Watchers once the run is committed.
//
// It does no I/O beyond the *pebble.DB it is given (and the snapshot file
// raftnode names for Restore), takes time only from the injected clock
// (lease expiry), logs only to the injected logger, and imports no network
// package, transport or server itself (raftnode only for its Request,
// Result and Snapshot types; tests/lint holds it to that): the server wires
// it into a member, the simulation drives it directly.
package statemachine
