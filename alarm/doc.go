// Package alarm is the cluster's set of raised alarms (etcd's AlarmStore)
// and the storage quota that raises NOSPACE. The set is part of the
// replicated state: it changes only when an AlarmRequest is applied from the
// raft log, inside the apply batch of that entry, so every member holds the
// same alarms at the same applied index. It persists under prefix 0x24 (see
// docs/architecture.md): 0x24 + type (4 BE) + member ID (8 BE) → a sealed
// marshaled etcdserverpb.AlarmMember.
//
// The quota side is pure: Cost prices a request as etcd's backend quota does,
// and a request that would add data while NOSPACE is raised fails with
// ErrNoSpace on apply, deterministically on every member.
package alarm
