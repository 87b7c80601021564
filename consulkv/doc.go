// Package consulkv is the pure logic of Consul's KV store, sessions and
// locks on synod's keyspace: where an entry, its metadata, a session and a
// lock live as etcd keys, how a KV operation (set, cas, lock, unlock,
// delete, the /v1/txn verbs) changes a view of the entries read at one
// revision, and which etcd writes and compares commit that change as one
// transaction. It does no I/O: consulapi reads, calls it and commits.
package consulkv
