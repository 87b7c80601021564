// Package simulation runs whole synod clusters inside one `go test` process
// under a seeded, single-threaded scheduler, in the style of FoundationDB's
// simulator and TigerBeetle's VOPR, and it runs the code that ships: each
// member is the production raft step function (raftnode.Core), applying
// through the production state machine (statemachine.Machine: mvcc, the
// lessor, alarms, auth and membership with their gates), over the
// production raft log (storage.LogStore), all on a Pebble database on an
// in-memory filesystem that drops unsynced writes when the member crashes.
// The scheduler calls the Core's step methods (Tick, Step, ProposeAsync,
// ReadIndexAsync, Advance) where raftnode's goroutine shell (raftnode.Node)
// would; nothing of the Ready handling, the apply path, the snapshot path
// or the lease duty's request is re-implemented here. A fake clock, a
// simulated network (delay, loss, duplication, reordering, partitions) and
// a random client workload are all driven from one seed, so a failing seed
// replays byte for byte.
//
// The workload: single-key gets, puts, compare-and-sets and deletes (the
// register history), multi-key transactions, leases (grants, leased puts,
// keep-alives, revocations, the leader's expiries), compactions and a
// NOSPACE alarm raised and disarmed; the faults: partitions, crashes,
// pauses, membership changes and leader transfers.
//
// After each run the register history is checked for linearizability
// against the kvmodel model, every member's state hash is compared at
// equal applied index, every acknowledged write is looked up at its
// revision on every member, leases are judged, no put may be acknowledged
// while a NOSPACE alarm was certainly raised, and, as it happens, every
// revision's events must reach the watchers once, in order, with no gap,
// exactly as the store's revision log holds them (observer.go). See
// docs/verification.md.
package simulation
