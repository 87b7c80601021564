package mvcc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/record"
)

// ErrUnknownRequest is returned (fatal) by Apply for an InternalRaftRequest
// that carries none of Range, Put, DeleteRange, Txn or Compaction: such
// entries belong to ApplyOther. Nothing is written.
var ErrUnknownRequest = errors.New("mvcc: Apply: not a key-value request")

// ErrForeignWrite is returned by ApplyOther when fn wrote a key below 0x20
// (the raft log or this package's keyspace). Nothing is written.
var ErrForeignWrite = errors.New("mvcc: ApplyOther: write below prefix 0x20")

// Result is the outcome of applying one key-value entry.
type Result struct {
	// Resp is *RangeResponse, *PutResponse, *DeleteRangeResponse,
	// *TxnResponse or *CompactionResponse with Header.Revision filled; nil
	// when Err is set.
	Resp proto.Message
	// Err is a deterministic request error (ErrCompacted, ErrFutureRev,
	// ErrKeyNotFound, ErrLeaseNotFound). The entry still counts as applied
	// and wrote nothing else.
	Err error
	// Compacted, for a Compaction, is closed once the physical deletion up to
	// the compaction revision has finished (for ErrCompacted: up to the
	// current compaction revision). It is never closed if the store is
	// closed first.
	Compacted <-chan struct{}
	// Events are the changes of the revision, in sub-revision order: PUT
	// with the new kv, DELETE with Kv{Key, ModRevision}. PrevKv is not set.
	Events []*mvccpb.Event
}

// isRequestErr reports whether err is a deterministic request-level error.
func isRequestErr(err error) bool {
	return errors.Is(err, ErrCompacted) || errors.Is(err, ErrFutureRev) ||
		errors.Is(err, ErrKeyNotFound) || errors.Is(err, ErrLeaseNotFound)
}

// writer accumulates the writes of one revision in the apply batch.
type writer struct {
	b        *pebble.Batch
	gens     *genCache // the store's; updated with every write to b
	look     *lookup   // the group's: finds a put's previous version in b
	prefix   bool      // the store's prefixSeek (visitKey)
	beginRev int64
	changes  int64 // next sub revision
	events   []*mvccpb.Event
}

// putEvent is a put's event and its key-value in one allocation.
type putEvent struct {
	ev mvccpb.Event
	kv mvccpb.KeyValue
}

// put writes a new version of key at beginRev+1, continuing its generation
// (create revision, version) if the key is live, including earlier writes of
// this revision.
func (w *writer) put(key, value []byte, lease int64) error {
	rev := w.beginRev + 1
	g, ok := w.gens.get(key)
	if !ok {
		var err error
		if g, err = w.look.generation(key, rev); err != nil {
			return err
		}
	}
	if err := indexLease(w.b, key, g.lease, lease); err != nil {
		return err
	}
	pe := &putEvent{kv: mvccpb.KeyValue{Key: key, Value: value, CreateRevision: rev, ModRevision: rev, Version: 1, Lease: lease}}
	kv := &pe.kv
	if g.live {
		kv.CreateRevision, kv.Version = g.create, g.version+1
	}
	if err := setVersion(w.b, versionKey(key, rev), tagPut, w.changes, kv); err != nil {
		return err
	}
	w.gens.set(key, generation{create: kv.CreateRevision, version: kv.Version, mod: rev, lease: lease, live: true})
	pe.ev.Type, pe.ev.Kv = mvccpb.Event_PUT, kv
	w.events = append(w.events, &pe.ev)
	return w.log(tagPut, key)
}

// tombstone writes a deletion of key, live and attached to lease, at
// beginRev+1.
func (w *writer) tombstone(key []byte, lease int64) error {
	rev := w.beginRev + 1
	if err := indexLease(w.b, key, lease, 0); err != nil {
		return err
	}
	if err := setVersion(w.b, versionKey(key, rev), tagTombstone, w.changes, nil); err != nil {
		return err
	}
	w.gens.forget(key)
	kv := &mvccpb.KeyValue{Key: key, ModRevision: rev}
	w.events = append(w.events, &mvccpb.Event{Type: mvccpb.Event_DELETE, Kv: kv})
	return w.log(tagTombstone, key)
}

// log appends the revision-log pointer of the change just written.
func (w *writer) log(tag byte, key []byte) error {
	lk := logKey(w.beginRev+1, w.changes)
	w.changes++
	op := w.b.SetDeferred(len(lk), record.HeaderSize+1+len(key))
	copy(op.Key, lk)
	op.Value[record.HeaderSize] = tag
	copy(op.Value[record.HeaderSize+1:], key)
	record.SealInPlace(op.Key, op.Value)
	return op.Finish()
}

// setVersion adds the sealed version record of vk to b (the format of
// seal(vk, versionPayload(tag, sub, marshal(kv))); kv is nil for a
// tombstone), encoding it straight into the batch: no intermediate copies
// of the value, which a put's record otherwise made three of.
func setVersion(b *pebble.Batch, vk []byte, tag byte, sub int64, kv *mvccpb.KeyValue) error {
	size := 0
	if kv != nil {
		size = proto.Size(kv)
	}
	op := b.SetDeferred(len(vk), record.HeaderSize+versionHeaderLen+size)
	copy(op.Key, vk)
	p := op.Value[record.HeaderSize:]
	p[0] = tag
	binary.BigEndian.PutUint64(p[1:versionHeaderLen], uint64(sub))
	if kv != nil {
		out, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(p[versionHeaderLen:versionHeaderLen], kv)
		if err != nil {
			return fmt.Errorf("mvcc: marshal KeyValue: %w", err)
		}
		if len(out) != size || (size > 0 && &out[0] != &p[versionHeaderLen]) {
			return fmt.Errorf("mvcc: marshal KeyValue: %d bytes, sized %d", len(out), size)
		}
	}
	record.SealInPlace(op.Key, op.Value)
	return op.Finish()
}

// Apply applies one committed raft entry carrying a key-value request: a
// Group of one. Only the raft loop calls it, serially. The writes and the
// new applied index/term are committed in one pebble batch with
// pebble.NoSync. An entry at or below the applied index is ignored (zero
// Result). A returned error is fatal (I/O, corruption): the member must
// stop.
func (s *Store) Apply(index, term uint64, req *pb.InternalRaftRequest) (Result, error) {
	return s.ApplyWith(index, term, req, nil)
}

// ApplyWith is Group.ApplyWith for a group of one: the revision of req,
// the writes of extra (under prefixes >= 0x20) and the applied index
// commit atomically. If req fails with a request-level error, extra is not
// called and only the applied index is committed. An error from extra, or
// an extra write below 0x20 (ErrForeignWrite), is returned and nothing is
// written.
func (s *Store) ApplyWith(index, term uint64, req *pb.InternalRaftRequest, extra func(b *pebble.Batch) error) (Result, error) {
	g, err := s.NewGroup()
	if err != nil {
		return Result{}, err
	}
	defer g.Close()
	res, err := g.ApplyWith(index, term, req, extra)
	if err != nil {
		return Result{}, err
	}
	return res, g.Commit()
}

// ApplyOther records index/term as applied for an entry mvcc does not
// interpret (Group.ApplyOther for a group of one), letting fn add writes
// under prefixes >= 0x20 to the same atomic batch. fn may be nil. An
// error from fn is returned and nothing is written. Entries at or below
// the applied index are ignored.
func (s *Store) ApplyOther(index, term uint64, fn func(b *pebble.Batch) error) error {
	g, err := s.NewGroup()
	if err != nil {
		return err
	}
	defer g.Close()
	if err := g.ApplyOther(index, term, fn); err != nil {
		return err
	}
	return g.Commit()
}

// dispatch checks req for its request-level errors and, if it has none,
// evaluates it into w. A Put is checked (lease, ignore_value/ignore_lease
// on a missing key) before it writes, a Txn's taken path before any of its
// ops runs (txnState.txn); a DeleteRange has no request-level error.
// Compactions go through Group.compaction.
func (s *Store) dispatch(w *writer, req *pb.InternalRaftRequest) (res Result, err error) {
	t := &txnState{ctx: context.Background(), src: w.b, prefix: w.prefix, w: w, beginRev: w.beginRev,
		compactRev: s.compactRev.Load(), leaseExists: s.opts.LeaseExists}
	switch {
	case req.GetRange() != nil:
		res.Resp, err = executeRange(t.ctx, t.src, req.Range, t.beginRev, t.compactRev)
	case req.GetPut() != nil:
		if err = t.checkPut(req.Put); err == nil {
			res.Resp, err = t.put(req.Put)
		}
	case req.GetDeleteRange() != nil:
		res.Resp, err = t.deleteRange(req.DeleteRange)
	case req.GetTxn() != nil:
		res.Resp, err = t.txn(req.Txn)
	default:
		return res, ErrUnknownRequest
	}
	if err != nil {
		return Result{}, err
	}
	return res, nil
}

// compaction validates and records a new compaction revision in the batch.
func (s *Store) compaction(w *writer, rev int64) (Result, *int64, error) {
	cur := s.compactRev.Load()
	if rev <= cur {
		return Result{Compacted: s.waitPhysical(cur)}, nil, ErrCompacted
	}
	if rev > w.beginRev {
		return Result{}, nil, ErrFutureRev
	}
	if err := setMeta(w.b, metaCompact, be64(uint64(rev))); err != nil {
		return Result{}, nil, err
	}
	resp := &pb.CompactionResponse{Header: &pb.ResponseHeader{Revision: w.beginRev}}
	return Result{Resp: resp}, &rev, nil
}

// commitBatch adds to b the revision (when it is not the store's) and the
// applied index, commits b with pebble.NoSync and publishes the new
// in-memory state (revision before compaction revision: readers load them
// in the opposite order). Every apply ends here, through a Group.
func (s *Store) commitBatch(b *pebble.Batch, rev int64, index, term uint64, compactTo *int64) error {
	if rev != s.rev.Load() {
		if err := setMeta(b, metaRev, be64(uint64(rev))); err != nil {
			return err
		}
	}
	applied := appliedBytes(index, term)
	if err := setMeta(b, metaApplied, applied); err != nil {
		return err
	}
	if s.leaseIdx.Load() {
		if err := setMeta(b, metaLeaseIdx, applied); err != nil {
			return err
		}
	}
	start := time.Now()
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("mvcc: commit apply batch: %w", err)
	}
	if s.opts.ObserveCommit != nil {
		s.opts.ObserveCommit(time.Since(start))
	}
	s.rev.Store(rev)
	if compactTo != nil {
		s.compactRev.Store(*compactTo)
	}
	s.applied.Store(&appliedState{index: index, term: term})
	return nil
}

// addExtra runs extra on a batch of its own, checks it writes only under
// prefixes >= 0x20 and merges it into b.
func (s *Store) addExtra(b *pebble.Batch, extra func(b *pebble.Batch) error) error {
	eb := s.db.NewBatch()
	defer eb.Close()
	if err := extra(eb); err != nil {
		return err
	}
	if err := checkOtherWrites(eb); err != nil {
		return err
	}
	if err := b.Apply(eb, nil); err != nil {
		return fmt.Errorf("mvcc: merge extra writes: %w", err)
	}
	return nil
}

// checkOtherWrites rejects a batch that touches keys below prefixOthers.
func checkOtherWrites(b *pebble.Batch) error {
	r := b.Reader()
	for {
		kind, key, _, ok, err := r.Next()
		if err != nil {
			return fmt.Errorf("mvcc: ApplyOther: read batch: %w", err)
		}
		if !ok {
			return nil
		}
		if kind != pebble.InternalKeyKindLogData && (len(key) == 0 || key[0] < prefixOthers) {
			return fmt.Errorf("%w: key %q", ErrForeignWrite, key)
		}
	}
}

// setMeta writes a sealed meta value.
func setMeta(b *pebble.Batch, key, payload []byte) error {
	return b.Set(key, seal(key, payload), nil)
}

func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func appliedBytes(index, term uint64) []byte {
	return binary.BigEndian.AppendUint64(be64(index), term)
}
