package alarm

import pb "go.etcd.io/etcd/api/v3/etcdserverpb"

// Estimates etcd's backend quota adds to the size of what a request stores
// (server/storage/quota.go).
const (
	// KVOverhead is the estimated cost of one key's metadata.
	KVOverhead = 256
	// LeaseOverhead is the estimated cost of storing a lease: the cost of
	// a LeaseGrant.
	LeaseOverhead = 64
)

// CostPut is what a put may add to the database, as etcd prices it.
func CostPut(r *pb.PutRequest) int { return KVOverhead + len(r.GetKey()) + len(r.GetValue()) }

// CostTxn is what a txn may add: the larger of its branches, each the sum
// of its puts and nested txns. A txn without puts costs 0.
func CostTxn(r *pb.TxnRequest) int {
	success, failure := costOps(r.GetSuccess()), costOps(r.GetFailure())
	return max(success, failure)
}

func costOps(ops []*pb.RequestOp) int {
	n := 0
	for _, op := range ops {
		switch {
		case op.GetRequestPut() != nil:
			n += CostPut(op.GetRequestPut())
		case op.GetRequestTxn() != nil:
			n += CostTxn(op.GetRequestTxn())
		}
	}
	return n
}

// Available reports whether a request of cost bytes fits under quota given
// the current database size, as etcd decides: a request that adds nothing
// always fits, and a quota < 0 disables the check.
func Available(size, quota int64, cost int) bool {
	if cost == 0 || quota < 0 {
		return true
	}
	return size+int64(cost) < quota
}

// Capped reports ErrNoSpace for a request that must fail on apply because
// NOSPACE is raised (etcd's capped applier): a put, a txn with a put in
// either branch, or (leases call it with their own flag) a lease grant.
// Reads, deletes, compactions and everything else pass.
func Capped(noSpace bool, req *pb.InternalRaftRequest) error {
	if !noSpace {
		return nil
	}
	switch {
	case req.GetPut() != nil, req.GetLeaseGrant() != nil:
		return ErrNoSpace
	case req.GetTxn() != nil && CostTxn(req.GetTxn()) > 0:
		return ErrNoSpace
	}
	return nil
}
