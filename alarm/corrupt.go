package alarm

import (
	"errors"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// ErrCorrupt is the answer to a request that would change the key-value
// state while the CORRUPT alarm is raised (etcd's errors.ErrCorrupt;
// clients see "etcdserver: corrupt cluster", code DataLoss).
var ErrCorrupt = errors.New("etcdserver: corrupt cluster")

// Corrupt reports ErrCorrupt for a request that must fail on apply because
// CORRUPT is raised (etcd's corrupt applier): a put, a delete, a txn (those
// that reach raft: read-only txns are served locally and keep working, as
// in etcd), a compaction, a lease grant or revoke, and a lease expiry (a
// checkpoint with a negative remaining TTL, synod's form of the revoke
// etcd's expiry proposes). Renewals, reads, alarms (so the alarm can be
// disarmed), auth and membership requests pass. Nothing changes the keys
// while members are known to disagree on them, until an operator has
// looked and disarmed the alarm.
func Corrupt(corrupt bool, req *pb.InternalRaftRequest) error {
	if !corrupt {
		return nil
	}
	switch {
	case req.GetPut() != nil, req.GetDeleteRange() != nil, req.GetTxn() != nil, req.GetCompaction() != nil,
		req.GetLeaseGrant() != nil, req.GetLeaseRevoke() != nil, isExpiry(req.GetLeaseCheckpoint()):
		return ErrCorrupt
	}
	return nil
}

// isExpiry reports whether a checkpoint request expires a lease: a
// negative remaining TTL carries the renewal index the expiry is
// conditional on (server.Member.proposeExpiry).
func isExpiry(r *pb.LeaseCheckpointRequest) bool {
	for _, cp := range r.GetCheckpoints() {
		if cp.GetRemaining_TTL() < 0 {
			return true
		}
	}
	return false
}
