package auth

import (
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// LeaseKeys returns the keys attached to a lease, and whether it exists.
type LeaseKeys func(id int64) ([][]byte, bool)

// CheckRequest checks who's permission for a key-value request as etcd's
// auth applier does: a Put needs write on its key, read too with prev_kv,
// and write on every key already attached to its lease; a DeleteRange needs
// write on its range, read too with prev_kv; a Txn needs read on every
// compare and the permission of every op of both branches, nested txns
// included (one forbidden op denies the whole txn); a LeaseRevoke needs
// write on every attached key. The root role may do all of it. Other
// requests pass. Nil while auth is off.
func (s *Store) CheckRequest(who Info, req *pb.InternalRaftRequest, leases LeaseKeys) error {
	if !s.Enabled() {
		return nil
	}
	c := checker{s: s, who: who, leases: leases}
	switch {
	case req.Put != nil:
		return c.put(req.Put)
	case req.DeleteRange != nil:
		return c.deleteRange(req.DeleteRange)
	case req.Txn != nil:
		return c.txn(req.Txn)
	case req.LeaseRevoke != nil:
		return c.leasePuts(req.LeaseRevoke.ID)
	}
	return nil
}

// CheckTxn checks a txn (a read-only one, served without raft).
func (s *Store) CheckTxn(who Info, r *pb.TxnRequest, leases LeaseKeys) error {
	return s.CheckRequest(who, &pb.InternalRaftRequest{Txn: r}, leases)
}

// CheckLeaseKeys checks that who may write every key attached to lease id
// (etcd's LeaseRevoke and KeepAlive check), or is root.
func (s *Store) CheckLeaseKeys(who Info, id int64, leases LeaseKeys) error {
	if !s.Enabled() {
		return nil
	}
	return checker{s: s, who: who, leases: leases}.leasePuts(id)
}

// CheckLeaseReadable checks that who may read every key attached to lease
// id (etcd's TimeToLive with keys and Leases check), or is root.
func (s *Store) CheckLeaseReadable(who Info, id int64, leases LeaseKeys) error {
	if !s.Enabled() || s.IsAdminPermitted(who) == nil {
		return nil
	}
	keys, _ := leases(id)
	for _, k := range keys {
		if err := s.IsRangePermitted(who, k, nil); err != nil {
			return err
		}
	}
	return nil
}

// checker checks one request.
type checker struct {
	s      *Store
	who    Info
	leases LeaseKeys
}

func (c checker) put(r *pb.PutRequest) error {
	if err := c.s.IsPutPermitted(c.who, r.Key); err != nil {
		return err
	}
	if err := c.leasePuts(r.Lease); err != nil {
		return err
	}
	if r.PrevKv {
		return c.s.IsRangePermitted(c.who, r.Key, nil)
	}
	return nil
}

func (c checker) deleteRange(r *pb.DeleteRangeRequest) error {
	if err := c.s.IsDeleteRangePermitted(c.who, r.Key, r.RangeEnd); err != nil {
		return err
	}
	if r.PrevKv {
		return c.s.IsRangePermitted(c.who, r.Key, r.RangeEnd)
	}
	return nil
}

func (c checker) txn(r *pb.TxnRequest) error {
	for _, cmp := range r.Compare {
		if err := c.s.IsRangePermitted(c.who, cmp.Key, cmp.RangeEnd); err != nil {
			return err
		}
	}
	if err := c.ops(r.Success); err != nil {
		return err
	}
	return c.ops(r.Failure)
}

func (c checker) ops(ops []*pb.RequestOp) error {
	for _, op := range ops {
		var err error
		switch {
		case op.GetRequestRange() != nil:
			rr := op.GetRequestRange()
			err = c.s.IsRangePermitted(c.who, rr.Key, rr.RangeEnd)
		case op.GetRequestPut() != nil:
			err = c.put(op.GetRequestPut())
		case op.GetRequestDeleteRange() != nil:
			err = c.deleteRange(op.GetRequestDeleteRange())
		case op.GetRequestTxn() != nil:
			err = c.txn(op.GetRequestTxn())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// leasePuts checks write on every key attached to lease id, unless who is
// root or the lease does not exist.
func (c checker) leasePuts(id int64) error {
	if id == 0 || c.leases == nil {
		return nil
	}
	keys, ok := c.leases(id)
	if !ok || c.s.IsAdminPermitted(c.who) == nil {
		return nil
	}
	for _, k := range keys {
		if err := c.s.IsPutPermitted(c.who, k); err != nil {
			return err
		}
	}
	return nil
}
