package mvcc

import (
	"errors"
	"fmt"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/cockroachdb/pebble/v2"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// ErrWriteAfterCheck is returned (fatal) by Group.Apply when an entry failed
// with a request-level error after it had already written to the group's
// batch. Every request-level error is checked before anything is written
// (etcd's checkTxn: range revisions, put leases, ignore_value/ignore_lease
// on missing keys), so only a txn whose ops overlap, which the API edge
// refuses, can get here: etcd panics on it, the member stops. The group is
// unusable and nothing of it is committed.
var ErrWriteAfterCheck = errors.New("mvcc: a request failed after it wrote")

// errGroupDone is returned by a Group used after Commit or Close.
var errGroupDone = errors.New("mvcc: group: used after Commit or Close")

// Group is the one apply path: it applies a run of consecutive committed
// entries in one Pebble batch, committed once. Key-value requests (Apply,
// ApplyWith), writes of other packages under prefixes >= 0x20 (ApplyOther,
// ApplyWith's extra) and entries that only advance the applied index
// (Skip) all go into that batch; each entry sees the writes of the entries
// before it, and the revision and applied index are written once for the
// run. Nothing of the group is visible, to readers or to a restart, until
// Commit returns. The one exception is a Compaction, which waits on the
// physical compactor: Apply commits what the group holds, then the
// compaction on its own, and goes on in a fresh batch. Only the raft loop
// uses a Group, and no other apply call may run between NewGroup and
// Commit or Close. Store.Apply, ApplyWith and ApplyOther are groups of one.
type Group struct {
	s     *Store
	b     *pebble.Batch
	look  *lookup // the puts' previous-version lookups in b (lookup.go)
	rev   int64   // the revision after the entries applied so far
	index uint64  // the last entry applied so far (0: none)
	term  uint64
	dirty bool  // b holds entries not yet committed
	err   error // set once the group is unusable
	// w is the writer of the entry being applied, reset for each, and
	// events the backing array of every entry's events: one allocation
	// per run instead of a writer and an events slice per entry.
	w      writer
	events []*mvccpb.Event
}

// NewGroup starts a group. ErrClosed, or the error that stopped the store.
func (s *Store) NewGroup() (*Group, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	b := s.db.NewIndexedBatch()
	return &Group{s: s, b: b, look: newLookup(b, s.prefixSeek), rev: s.rev.Load()}, nil
}

// Rev is the revision after the entries the group applied so far (the
// store's revision once it commits).
func (g *Group) Rev() int64 { return g.rev }

// applied reports whether the entry at index is already reflected in the
// store or in the group. reapply is the planted bug of a
// synod_unsafe_reapply build, which only key-value entries honour.
func (g *Group) applied(index uint64, reapply bool) bool {
	a := g.s.applied.Load()
	return (index <= a.index || index <= g.index) && !reapply
}

// advance records the entry at index/term as applied by the group.
func (g *Group) advance(index, term uint64) {
	g.index, g.term, g.dirty = index, term, true
}

// fail makes the group unusable with err and returns it.
func (g *Group) fail(err error) error {
	g.err = err
	g.s.gens.reset() // it may describe writes the group will never commit
	return err
}

// Apply evaluates one committed key-value entry (Range, Put, DeleteRange,
// Txn or Compaction) into the group. An entry at or below the applied
// index is ignored (zero Result). A request-level error is returned in
// Result.Err and the entry writes nothing; a returned error is fatal.
func (g *Group) Apply(index, term uint64, req *pb.InternalRaftRequest) (Result, error) {
	return g.ApplyWith(index, term, req, nil)
}

// ApplyWith is Apply for an entry whose effect is a key-value request plus
// writes of another package: extra (which may be nil) adds writes under
// prefixes >= 0x20, in the same batch, so the revision, the extra writes
// and the applied index commit atomically. A revoked lease uses it: the
// deletion of its keys (one Txn, one revision) and of its record. If req
// fails with a request-level error, extra is not called. An error from
// extra, or an extra write below 0x20 (ErrForeignWrite), is returned and
// the group is unusable.
func (g *Group) ApplyWith(index, term uint64, req *pb.InternalRaftRequest, extra func(b *pebble.Batch) error) (Result, error) {
	if g.err != nil {
		return Result{}, g.err
	}
	if g.applied(index, unsafeReapply) {
		return Result{}, nil
	}
	if req.GetCompaction() != nil {
		return g.compaction(index, term, req.Compaction.Revision)
	}
	room := g.eventRoom()
	g.w = writer{b: g.b, gens: &g.s.gens, look: g.look, prefix: g.s.prefixSeek, beginRev: g.rev, events: g.events[len(g.events):]}
	w := &g.w
	res, err := g.s.dispatch(w, req)
	switch {
	case err != nil && !isRequestErr(err):
		return Result{}, g.fail(err)
	case err != nil && w.changes > 0:
		return Result{}, g.fail(fmt.Errorf("%w: entry %d: %w", ErrWriteAfterCheck, index, err))
	case err != nil:
		res = Result{Err: err}
	case extra != nil:
		if err := g.s.addExtra(g.b, extra); err != nil {
			return Result{}, g.fail(err)
		}
	}
	if w.changes > 0 {
		g.rev++
	}
	g.advance(index, term)
	// The entry's events, capped so that no later append reaches into
	// the next entry's. Those that fit were written into the group's
	// array, which now holds them; more went to an array of their own.
	res.Events = w.events[:len(w.events):len(w.events)]
	if len(w.events) <= room {
		g.events = g.events[:len(g.events)+len(w.events)]
	}
	return res, nil
}

// eventRoom makes sure the group's events array has room for a few events
// (starting a fresh one when it has not; the entries' slices keep the old
// one alive) and returns how many fit.
func (g *Group) eventRoom() int {
	const chunk = 64
	if cap(g.events)-len(g.events) < 4 {
		g.events = make([]*mvccpb.Event, 0, chunk)
	}
	return cap(g.events) - len(g.events)
}

// ApplyOther records an entry mvcc does not interpret as applied, letting
// fn (which may be nil) add writes under prefixes >= 0x20 to the group's
// batch. An error from fn, or a write below 0x20 (ErrForeignWrite), is
// returned and the group is unusable (nothing of it is committed). Entries
// at or below the applied index are ignored.
func (g *Group) ApplyOther(index, term uint64, fn func(b *pebble.Batch) error) error {
	if g.err != nil {
		return g.err
	}
	if g.applied(index, false) {
		return nil
	}
	if fn != nil {
		if err := g.s.addExtra(g.b, fn); err != nil {
			return g.fail(err)
		}
	}
	g.advance(index, term)
	return nil
}

// Skip records an entry the caller answered without the store (an empty
// entry, or a request refused by a gate) as applied: ApplyOther without
// writes.
func (g *Group) Skip(index, term uint64) {
	_ = g.ApplyOther(index, term, nil)
}

// compaction commits what the group holds, then validates and commits the
// compaction in a batch of its own (queueing its hash job first, so the
// compactor finds it when it sees the new compaction revision), and goes on
// in a fresh batch.
func (g *Group) compaction(index, term uint64, rev int64) (Result, error) {
	s := g.s
	if g.dirty {
		if err := g.commit(); err != nil {
			return Result{}, g.fail(err)
		}
		g.newBatch()
	}
	previous := s.compactRev.Load()
	w := &writer{b: g.b, gens: &s.gens, look: g.look, prefix: s.prefixSeek, beginRev: g.rev}
	res, compactTo, err := s.compaction(w, rev)
	if err != nil && !isRequestErr(err) {
		return Result{}, g.fail(err)
	}
	if err != nil {
		res = Result{Err: err, Compacted: res.Compacted}
	}
	if compactTo != nil {
		s.queueCompactHash(*compactTo, previous)
	}
	if err := g.look.close(); err != nil {
		return Result{}, g.fail(err)
	}
	if err := s.commitBatch(g.b, g.rev, index, term, compactTo); err != nil {
		return Result{}, g.fail(err)
	}
	g.index, g.term = index, term
	g.newBatch()
	if compactTo != nil {
		res.Compacted = s.waitPhysical(*compactTo)
		s.kickCompactor()
	}
	return res, nil
}

// newBatch closes the committed batch and goes on in a fresh one, with a
// lookup of its own.
func (g *Group) newBatch() {
	_ = g.look.close()
	g.b.Close()
	g.b = g.s.db.NewIndexedBatch()
	g.look = newLookup(g.b, g.s.prefixSeek)
}

// commit writes the group's revision and applied index and commits its
// batch with pebble.NoSync, then publishes the new state. A group holding
// no entry commits nothing.
func (g *Group) commit() error {
	if !g.dirty {
		return nil
	}
	if err := g.look.close(); err != nil {
		return err
	}
	if err := g.s.commitBatch(g.b, g.rev, g.index, g.term, nil); err != nil {
		return err
	}
	g.dirty = false
	return nil
}

// Commit commits the group (see commit). The group cannot be used
// afterwards; an error is fatal.
func (g *Group) Commit() error {
	defer g.Close()
	if g.err != nil {
		return g.err
	}
	return g.commit()
}

// Close discards whatever the group holds that was not committed. It may
// be called more than once, and after Commit.
func (g *Group) Close() {
	if g.b != nil && g.dirty {
		g.s.gens.reset() // it may describe writes of the discarded batch
	}
	if g.b != nil {
		_ = g.look.close()
		_ = g.b.Close()
		g.b = nil
	}
	if g.err == nil {
		g.err = errGroupDone
	}
}
