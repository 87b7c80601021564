package etcdapi

import (
	"context"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"
)

// lockService is etcd's v3lockpb.Lock service: server-side locks built, as in
// etcd, from the clientv3/concurrency recipe through a client of this very
// member, so they share the key layout of concurrency.Mutex and the two
// interoperate (a lock taken by one excludes the other).
//
// Two things go beyond etcd:
//   - After waiting, and before answering, the lock's lease is checked once
//     more: a lease that expired while its owner queued (etcd#11456) gives
//     "etcdserver: requested lease not found" and the queued key is removed,
//     instead of a lock held by a dead session.
//   - The answer's key carries the fencing token: its create revision (see
//     docs/locks.md for the txn that compares on it).
type lockService struct {
	v3lockpb.UnsafeLockServer
	c *clientv3.Client
	e *edge // forwards the caller's identity to c (nil: none)
}

// Lock waits until the caller holds the lock named r.Name under lease r.Lease.
func (l *lockService) Lock(ctx context.Context, r *v3lockpb.LockRequest) (*v3lockpb.LockResponse, error) {
	ctx, err := l.e.forward(ctx)
	if err != nil {
		return nil, toGRPCError(err)
	}
	s, err := recipeSession(ctx, l.c, r.GetLease())
	if err != nil {
		return nil, toGRPCError(err)
	}
	m := concurrency.NewMutex(s, string(r.GetName()))
	if err := m.Lock(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	if err := leaseAlive(ctx, l.c, int64(s.Lease())); err != nil {
		_, _ = l.c.Delete(context.WithoutCancel(ctx), m.Key())
		return nil, toGRPCError(err)
	}
	return &v3lockpb.LockResponse{Header: m.Header(), Key: []byte(m.Key())}, nil
}

// Unlock releases the lock by deleting its key.
func (l *lockService) Unlock(ctx context.Context, r *v3lockpb.UnlockRequest) (*v3lockpb.UnlockResponse, error) {
	ctx, err := l.e.forward(ctx)
	if err != nil {
		return nil, toGRPCError(err)
	}
	resp, err := l.c.Delete(ctx, string(r.GetKey()))
	if err != nil {
		return nil, toGRPCError(err)
	}
	return &v3lockpb.UnlockResponse{Header: resp.Header}, nil
}

// recipeSession is a concurrency.Session on an existing lease that the
// service never keeps alive or revokes: the lease belongs to the caller.
// lease -1 (as etcd's election service uses for read-only calls) names no
// lease at all.
func recipeSession(ctx context.Context, c *clientv3.Client, lease int64) (*concurrency.Session, error) {
	s, err := concurrency.NewSession(c, concurrency.WithLease(clientv3.LeaseID(lease)), concurrency.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	s.Orphan()
	return s, nil
}

// leaseAlive returns rpctypes.ErrGRPCLeaseNotFound unless lease still exists
// with time left, as seen by a linearizable TimeToLive.
func leaseAlive(ctx context.Context, c *clientv3.Client, lease int64) error {
	resp, err := c.TimeToLive(ctx, clientv3.LeaseID(lease))
	if err != nil {
		return err
	}
	if resp.TTL <= 0 {
		return rpctypes.ErrGRPCLeaseNotFound
	}
	return nil
}
