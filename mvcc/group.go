package mvcc

import (
	"errors"

	"github.com/cockroachdb/pebble"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// ErrGroupBroken is returned by Group.Apply when an entry failed with a
// request-level error after it had already written to the group's batch,
// which cannot take back part of its contents. The group is unusable: the
// caller closes it, which discards every entry of the group, and applies
// them again one by one with Apply, which gives the same results since
// nothing of the group was committed. The API edge rejects the requests
// that could do this (a txn whose ops overlap), so it is a safety net.
var ErrGroupBroken = errors.New("mvcc: group: an entry failed after writing; apply the group entry by entry")

// errGroupCompaction is returned by Group.Apply for a Compaction, which
// waits on the physical compactor and must go through Apply.
var errGroupCompaction = errors.New("mvcc: group: a compaction must be applied alone")

// Group applies a run of consecutive committed entries carrying key-value
// requests (Put, DeleteRange, Txn) in one Pebble batch, committed once:
// each entry sees the writes of the entries before it, and the revision
// and applied index are written once for the run. Results are those Apply
// would give entry by entry, but nothing of the group is visible, to
// readers or to a restart, until Commit returns. Only the raft loop uses a
// Group, and no other apply call may run between NewGroup and Commit or
// Close.
type Group struct {
	s     *Store
	b     *pebble.Batch
	rev   int64  // the revision after the entries applied so far
	index uint64 // the last entry applied so far (0: none)
	term  uint64
	err   error // ErrGroupBroken once broken

	committed bool // the batch was committed: the generation cache holds
}

// NewGroup starts a group. ErrClosed, or the error that stopped the store.
func (s *Store) NewGroup() (*Group, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	return &Group{s: s, b: s.db.NewIndexedBatch(), rev: s.rev.Load()}, nil
}

// Apply evaluates one entry into the group. An entry at or below the
// applied index is ignored (zero Result). A request-level error is
// returned in Result.Err and the entry writes nothing; a returned error is
// ErrGroupBroken (see there) or fatal. Result.Compacted is never set.
func (g *Group) Apply(index, term uint64, req *pb.InternalRaftRequest) (Result, error) {
	if g.err != nil {
		return Result{}, g.err
	}
	if req.GetCompaction() != nil {
		return Result{}, errGroupCompaction
	}
	if a := g.s.applied.Load(); (index <= a.index || index <= g.index) && !unsafeReapply {
		return Result{}, nil
	}
	w := &writer{b: g.b, gens: &g.s.gens, beginRev: g.rev}
	res, _, err := g.s.dispatch(w, req)
	if err != nil {
		if !isRequestErr(err) {
			return Result{}, err
		}
		if w.changes > 0 {
			g.err = ErrGroupBroken
			return Result{}, g.err
		}
		res = Result{Err: err}
	}
	if w.changes > 0 {
		g.rev++
	}
	g.index, g.term = index, term
	res.Events = w.events
	return res, nil
}

// Skip records an entry the caller answered without the store (a request
// refused before it reached it) as applied, so that the group's applied
// index covers it, as ApplyOther(index, term, nil) would.
func (g *Group) Skip(index, term uint64) {
	if g.err == nil && index > g.index {
		g.index, g.term = index, term
	}
}

// Commit writes the group's revision and applied index and commits its
// batch with pebble.NoSync, then publishes the new state. A group with no
// entry applied commits nothing. The group cannot be used afterwards; an
// error is fatal.
func (g *Group) Commit() error {
	defer g.Close()
	if g.err != nil {
		return g.err
	}
	if g.index == 0 {
		return nil
	}
	if err := g.s.commitBatch(g.b, g.rev, g.index, g.term, nil); err != nil {
		return err
	}
	g.committed = true
	return nil
}

// Close discards whatever the group holds that was not committed. It may
// be called more than once, and after Commit.
func (g *Group) Close() {
	if g.b != nil && !g.committed {
		g.s.gens.reset() // it may describe writes of the discarded batch
	}
	if g.b != nil {
		_ = g.b.Close()
		g.b = nil
	}
	if g.err == nil {
		g.err = errors.New("mvcc: group: used after Commit or Close")
	}
}
