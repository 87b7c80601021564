// Package audit writes synod's audit log: one JSON line for every request
// that changes the cluster (Put, DeleteRange, a Txn with a write, Compact,
// leases, membership, alarms, maintenance, every Auth RPC) and for every
// authentication or authorization decision, allowed or refused.
//
// The package has three parts:
//
//   - Describe turns an etcd v3 request (and its response) into the fields
//     of an Entry, and says whether the request is one that is audited.
//   - Entry.AppendJSON is the line format (see docs/security.md); it is
//     pinned by a golden file.
//   - Log is the writer: Record never blocks, a bounded queue feeds one
//     writer goroutine, and overflow is counted and written as a single
//     "dropped" line once there is room again. The file is rotated by
//     renaming when it reaches its size limit.
//
// The gRPC interceptors that feed a Log live in package etcdapi, so request
// handlers never see it.
package audit
