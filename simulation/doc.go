// Package simulation runs whole synod clusters inside one `go test` process
// under a seeded, single-threaded scheduler, in the style of FoundationDB's
// simulator and TigerBeetle's VOPR. Every member keeps its raft log
// (storage.LogStore) and its state (mvcc.Store) in Pebble on an in-memory
// filesystem that drops unsynced writes when the member crashes; a fake
// clock, a simulated network (delay, loss, duplication, reordering,
// partitions) and a random client workload are all driven from one seed, so
// a failing seed replays byte for byte.
//
// After each run the client history is checked for linearizability against
// the kvmodel register model, every member's state hash is compared at
// equal applied index, and every acknowledged write is looked up at its
// revision on every member. See docs/verification.md.
//
// The package drives go.etcd.io/raft's RawNode itself (see member.go) with
// the same Ready order, storage and apply code as raftnode, because
// raftnode's loop is bound to goroutines and channels, whose scheduling is
// not reproducible.
package simulation
