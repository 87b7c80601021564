// Package mvcc is the revisioned key-value keyspace of a synod member: the
// raft state machine. It implements etcd v3's KV semantics (revisions,
// versions, Range options, Txn compares, DeleteRange, Compaction) exactly as
// etcd's applier does, on the member's single Pebble database.
//
// # Keyspace
//
//	0x10 + enc(userkey) + ^rev.main (8 BE)  →  sealed version: tagPut + rev.sub (8 BE) + mvccpb.KeyValue,
//	                                           or tagTombstone + rev.sub (8 BE)
//	0x11 + rev.main (8 BE) + rev.sub (8 BE) →  sealed event pointer: tag (put/tombstone) + user key
//	0x12 + id                               →  sealed meta: applied index/term, current revision,
//	                                           compaction revision, finished physical compaction,
//	                                           compaction progress, restore marker, lease index mark
//	0x13 + lease ID (8 BE) + userkey        →  sealed empty value: the lease index, one entry per
//	                                           live key attached to a lease (leaseindex.go)
//
// enc escapes 0x00 as 0x00 0xFF and terminates with 0x00 0x01, so encoded
// keys sort like user keys and the versions of one key are contiguous, newest
// first. Every value is framed by package record (crc32c over key and
// payload); a value failing its checksum is reported as record.ErrCorrupt and
// never served. A key has at most one version per main revision; the API edge
// rejects a txn touching a key twice, and if one does anyway only the last
// write of the revision is kept.
//
// A read at revision R of a key seeks to enc(key)+^R and takes the first
// version of that key (a tombstone means absent). A range visits the user
// keys in order, one seek per key. Concurrent reads use a pebble snapshot
// taken with the current and compaction revisions; reads inside Apply use the
// entry's indexed batch, so later ops of a txn see the earlier ones. A version
// keeps its sub revision (the index of its change within the main revision):
// HashKV, which hashes etcd's revision records, needs it after compaction has
// trimmed the revision log.
//
// # Revisions
//
// A new store is at revision 1 with no keys and compaction revision -1, as
// etcd's. Each Put raises the revision by one, a DeleteRange only if it
// deleted something, a Txn once if its executed branch wrote anything. The
// writes of an entry and its applied index/term are committed in one batch
// with pebble.NoSync: the raft log is a database of its own, and the raft
// loop syncs this one (raftnode.Applier.Sync) before it truncates the log
// behind them (docs/architecture.md#durability-between-the-two).
//
// # Compaction
//
// Apply records the new compaction revision C in the entry's batch. A
// background goroutine (the only one) then deletes, in batches of at most
// Options.CompactionBatch versions, for each key every version older than
// the newest version <= C, and that version too if it is a tombstone (last,
// so an older version never resurfaces), then trims the revision log below C.
// Its progress is persisted with each batch; Open resumes it. Reads at any
// revision >= C and HashKV never depend on how far it has got.
//
// # Snapshot stream
//
// Snapshot.WriteTo writes every key >= 0x10 (except the restore marker) of a
// pebble snapshot, in key order, as:
//
//	header   "SYNODSNP" 0x01                      (magic, format version)
//	record   0x01 uvarint(len k) k uvarint(len v) v (repeated; v is the stored, sealed value)
//	trailer  0x02 index(8 BE) term(8 BE) count(8 BE) crc(4 BE)
//
// crc is the crc32c (Castagnoli) of every byte before it; count is the number
// of records; nothing may follow. Restore rejects, before changing anything,
// a stream with a bad header, unknown frame, length beyond the end, key
// outside the state keyspace or not strictly increasing, malformed meta
// value, wrong count, wrong checksum or trailing bytes, as a wrapped
// record.ErrCorrupt.
//
// # Restore
//
// A snapshot received from the leader replaces the state keyspace, crash
// safe, without going through the memtable and without the stream ever
// being written to a file:
//
//  1. ReceiveSnapshot, while the stream arrives: its records are streamed
//     into sstables of at most 64 MiB in a directory of Options.IngestDir
//     (on the database's filesystem, next to it) named recv-...tmp,
//     written with Comparer, the bloom filters and the key schema of
//     SetKeyLayout in the database's table format, while the stream is
//     verified (the checks above, and its trailer must name the index and
//     term of the snapshot's raft message); each table is synced, then
//     the directory; then it is renamed snap-<term>-<index>-<tables> and
//     Options.IngestDir synced. A bad or cut-off stream changes nothing
//     and its directory is removed. Only then does raft see the snapshot.
//  2. Restore(index, term), when raft installs it: the restore marker
//     (0x12 0x06 → 0x00 + the directory's name) is written, synced;
//  3. every key >= 0x10 but the marker is removed: excised (Pebble drops or
//     narrows the tables that hold them, rewriting nothing) when the
//     format supports it and no pebble snapshot of the store is open (an
//     excise would empty it under a reader or a stream being sent),
//     range-deleted otherwise;
//  4. the tables are ingested through hard links in a subdirectory
//     (Pebble links them into the LSM at the lowest level they fit and
//     removes what it was given; the tables themselves stay, and the
//     marker, not in them, stays in the memtable);
//  5. a synced batch sets the applied index/term and deletes the marker;
//     the directory, and every other received snapshot at or below the
//     index, is removed.
//
// An error after 2 leaves the store failed until reopened. Open, while the
// marker is set, redoes 3–5 from the directory it names (a marker of an
// older release names its stream file: the tables are written again from
// it); then it removes everything in Options.IngestDir but the received
// snapshots above the applied index (a receipt cut off by a crash, tables
// of an older release, snapshots installed or superseded). One above the
// applied index is kept because the raft log may record it as installed
// and need it restored (raftnode's recoverSnapshot); the next receipt,
// Restore or Open removes it once the state has passed it (raft never
// installs a snapshot at or below its commit index). Memory is one
// table's blocks, whatever the size of the state.
//
// Client backups are in etcd's format (etcdformat.go: EtcdRecords gives
// the history as etcd's key bucket holds it, EtcdImport imports one). Before
// that, a client backup (backup.go) was this stream followed by zero
// padding to a multiple of 512 bytes and the sha256 of stream and padding;
// ImportBackup still turns one into a new store with the same revisions.
package mvcc
