// Package etcdsnap is etcd's snapshot file format, read and written: the
// bbolt database `etcdctl snapshot save` stores (as etcd 3.5 to 3.7 lay it
// out, see go.etcd.io/etcd/server/v3/storage/schema), followed by the
// sha256 of the database.
//
// # Layout
//
// Buckets and what synod reads or writes in them:
//
//	key              main(8 BE) '_' sub(8 BE) ['t' for a deletion] → mvccpb.KeyValue
//	                 (KeyValue{Key} for a deletion), in revision order
//	meta             consistent_index, term (8 BE), confState (JSON raftpb.ConfState),
//	                 storageVersion ("3.7.0"), scheduledCompactRev and
//	                 finishedCompactRev (a revision key: main(8 BE) '_' 0(8))
//	lease            ID(8 BE) → leasepb.Lease
//	auth             authEnabled (1 byte), authRevision (8 BE)
//	authUsers        name → authpb.User;  authRoles  name → authpb.Role
//	members          ID in hex → JSON {id, peerURLs, name, clientURLs, isLearner}
//	members_removed  ID in hex → "removed"
//	cluster          clusterVersion ("3.7.0")
//	alarm            marshaled etcdserverpb.AlarmMember → empty
//
// The package knows the format only: it turns a file into these records
// and records into a file. Which records synod keeps, and how they map onto
// its own keyspace, is for the callers (server, mvcc).
//
// # Damaged files
//
// A file is verified before bbolt opens it, with etcdutl's rules and words:
// a size % 512 == 32 carries the sha256 trailer, which must match
// ("expected sha256 …, got …"); a file without one is refused unless the
// caller skips the check ("snapshot missing hash but
// --skip-hash-check=false"). bbolt trusts the pages it reads and may panic
// on a damaged file that passed (or skipped) the check; every read here
// turns such a panic, and a fault on the memory map, into an ErrCorrupt
// error.
package etcdsnap
