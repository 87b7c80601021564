// Package lease is synod's lessor: the replicated state of etcd v3 leases
// (ID, granted TTL, the raft index of the last grant or renewal, attached
// keys) and each member's local view of when every lease expires.
//
// The package is pure: it reads time only from an injected Clock, does no
// I/O beyond the Pebble batch or reader it is handed, and imports no
// network package.
//
// # Replicated state and local expiry
//
// Grants, renewals (keep-alives) and revocations all go through raft. Every
// member, on applying a grant or a renewal, sets that lease's expiry to its
// own clock at apply time plus the TTL. So every member, not only the
// leader, holds a conservative expiry for every lease: a new leader neither
// resets leases to their full TTL nor expires them early. Only the leader
// acts on expiry (Expired): it proposes an expiry that carries the renewal
// index it saw, and applying that expiry revokes the lease only if no
// renewal was applied in between, on every member alike (Plan).
//
// # Persistence
//
//	0x30 + ID (8 BE)  →  sealed payload: TTL (8 BE) + renewal index (8 BE)
//
// The keys attached to a lease are not persisted: they are rebuilt from the
// keyspace (the latest version of every key carries its lease) when the
// member opens or restores a snapshot, exactly as etcd rebuilds them, and
// kept in memory from the events of every applied entry (ApplyEvents).
// Local expiries are not persisted either: after a restart, a member
// counts every lease's full TTL again from the moment it loaded it.
//
// # Concurrency
//
// Plan*, Commit, ApplyEvents and Load are for the raft apply path (serial).
// Lookup, Exists, IDs and Expired are safe to call concurrently with them.
package lease
