package storage

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/synod-db/synod/record"
)

// maxPrealloc bounds the capacity Entries reserves up front: hi-lo may be the
// whole log while maxSize lets through only a few entries.
const maxPrealloc = 256

// Entries implements raft.Storage with MemoryStorage's contract: the entries
// in [lo, hi), at least one if any, at most maxSize bytes (proto.Size) beyond
// the first. raft.ErrCompacted if lo <= FirstIndex()-1, raft.ErrUnavailable if
// the log holds no entries, ErrOutOfBounds if hi > LastIndex()+1 or lo > hi.
// The returned slice is freshly allocated; the entries must not be mutated.
// Safe for concurrent use.
func (s *LogStore) Entries(lo, hi, maxSize uint64) ([]*raftpb.Entry, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	switch {
	case lo <= s.offset:
		return nil, raft.ErrCompacted
	case hi > s.last+1:
		return nil, fmt.Errorf("%w: entries [%d, %d) past last index %d", ErrOutOfBounds, lo, hi, s.last)
	case s.last == s.offset:
		return nil, raft.ErrUnavailable
	case lo > hi:
		return nil, fmt.Errorf("%w: entries [%d, %d): lo > hi", ErrOutOfBounds, lo, hi)
	}
	r := sizeLimiter{max: maxSize}
	out := make([]*raftpb.Entry, 0, min(hi-lo, maxPrealloc))
	diskHi := hi
	if c, ok := s.cache.lowest(); ok {
		diskHi = max(lo, min(hi, c))
	}
	var err error
	if lo < diskHi {
		if out, err = s.readRange(out, lo, diskHi, &r); err != nil || r.full {
			return out, err
		}
	}
	for i := diskHi; i < hi; i++ {
		c, _ := s.cache.get(i)
		if !r.admit(c.size) {
			break
		}
		out = append(out, c.e)
	}
	return out, nil
}

// sizeLimiter implements limitSize's rule: the first entry is always admitted,
// later ones while the running total stays within max.
type sizeLimiter struct {
	max, total uint64
	n          int
	full       bool
}

func (r *sizeLimiter) admit(size uint64) bool {
	if r.n > 0 && r.total+size > r.max {
		r.full = true
		return false
	}
	r.n++
	r.total += size
	return true
}

// readRange appends the entries in [lo, hi) from Pebble to out, stopping when
// r is full. A missing entry is corruption: the caller checked [lo, hi) lies
// within (offset, last].
func (s *LogStore) readRange(out []*raftpb.Entry, lo, hi uint64, r *sizeLimiter) ([]*raftpb.Entry, error) {
	s.diskReads.Add(1)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: logKey(lo), UpperBound: logKey(hi)})
	if err != nil {
		return out, fmt.Errorf("storage: open raft log iterator: %w", err)
	}
	out, err = scanRange(it, out, lo, hi, r)
	if cerr := it.Close(); err == nil && cerr != nil {
		err = readErr(cerr)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// scanRange is readRange's loop over an iterator bounded to [lo, hi).
func scanRange(it *pebble.Iterator, out []*raftpb.Entry, lo, hi uint64, r *sizeLimiter) ([]*raftpb.Entry, error) {
	want := lo
	for valid := it.First(); valid; valid = it.Next() {
		if idx, _ := parseLogKey(it.Key()); idx != want {
			return out, corruptf("raft log entry %d is missing (found %x)", want, it.Key())
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return out, readErr(err)
		}
		// Stored payload length == proto.Size: check before decoding.
		if !r.admit(uint64(max(len(v)-record.HeaderSize, 0))) {
			return out, nil
		}
		e, err := decodeEntry(it.Key(), v)
		if err != nil {
			return out, err
		}
		out = append(out, e)
		want++
	}
	if err := it.Error(); err != nil {
		return out, readErr(err)
	}
	if want != hi {
		return out, corruptf("raft log entry %d is missing (log read [%d, %d))", want, lo, hi)
	}
	return out, nil
}
