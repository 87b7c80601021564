//go:build synod_unsafe_nosync

package storage

// unsafeNoSync, compiled in only with `-tags synod_unsafe_nosync`,
// deliberately breaks durability: every commit that should be synced is
// committed without an fsync, so raft acknowledges entries (and HardState
// votes) before they are durable and a crash can lose them. It exists so that
// tests can show that the deterministic simulation (package simulation)
// catches an ack-before-fsync store; never ship a build with this tag.
const unsafeNoSync = true
