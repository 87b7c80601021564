// Package storage keeps a member's raft log, HardState and snapshot metadata
// in the raft log's own Pebble database and serves them to raft through
// raft.Storage.
//
// # Keys
//
// storage owns two key prefixes, the only keys of the raft log's database
// (docs/architecture.md#two-pebble-databases-per-member):
//
//	0x01 + index (8 bytes, big-endian)  → sealed raftpb.Entry (one per log entry)
//	0x02 'h'                            → sealed raftpb.HardState
//	0x02 's'                            → sealed raftpb.SnapshotMetadata (index, term, ConfState)
//	0x02 't'                            → sealed truncation point: index (8) + term (8)
//
// Every value is framed with record.Seal; every read is checked with
// record.Open, and a failure is returned wrapping record.ErrCorrupt, never
// served. Structural damage that a checksum cannot see (a missing entry in the
// middle of the log, an entry stored under the wrong index, undecodable
// protobuf) is reported the same way.
//
// # Log shape
//
// The log behaves exactly like raft.MemoryStorage: it has a "dummy" position,
// the truncation point (index, term), which is the last compacted entry (or
// the last applied snapshot). FirstIndex is truncation index + 1, Term of the
// truncation index is still answered, and LastIndex is the highest stored
// entry (or the truncation index when the log is empty). The truncation point
// is persisted on its own, separately from the snapshot metadata, because
// MemoryStorage semantics allow compacting to an index other than the
// snapshot's. An empty store reports FirstIndex 1 and LastIndex 0.
//
// Every mutation is one Pebble batch, so a crash leaves the store as it was
// after some prefix of the mutations (Pebble's WAL is replayed in order), never
// with a hole in the log.
//
// # Durability
//
// The member's state is in another database, whose apply batches are not
// synced; nothing orders its writes with this store's. The caller (raftnode)
// keeps the rule that makes the pair crash-safe: an entry is applied only
// after the Save that wrote it was synced, and the state is synced through
// index i (raftnode.Applier.Sync) before CreateSnapshot or Compact at i, so a
// crash never keeps a truncation point the state has not durably reached.
// CreateSnapshot and Compact are themselves unsynced: they become durable
// with the next synced Save, and losing them only brings back entries.
// ApplySnapshot comes before the state's restore, so the state is never
// ahead of the log (raftnode finishes an interrupted restore at start). A log still kept in a
// database shared with the state (before this split) is moved out once with
// HasLog, CopyLog and DropLog (server's moveLogOut).
//
// # Memory
//
// The truncation point, last index, HardState and snapshot metadata live in
// memory, and a bounded tail cache (1024 entries / 4 MiB by default) holds the
// most recently saved entries, so raft's reads of fresh entries right after
// Save never touch Pebble.
//
// # Concurrency
//
// One goroutine (the raft loop) is expected to drive a LogStore, calling both
// the raft.Storage methods and the mutators. The store is nevertheless safe for
// concurrent use: mutators are serialised among themselves, and readers may run
// concurrently with each other and with mutators (for example while a snapshot
// is being sent). Readers never wait for an append's fsync; they wait only for
// mutations that rewrite or remove entries they could observe (conflicting
// overwrites, Compact, ApplySnapshot).
package storage
