package mvcc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/synod-db/synod/record"
)

// The lease index holds one key per live key attached to a lease,
// 0x13 + lease ID (8 BE) + user key, with an empty sealed value: what a
// lessor rebuilds its attachments from at open and after a restore, in time
// proportional to the leased keys rather than to the store. Every put and
// tombstone keeps it in the same batch as the version it writes.
//
// metaLeaseIdx says through which applied index the index is complete.
// Every apply batch sets it to the batch's applied index while the index is
// complete (Store.leaseIdx), so it equals metaApplied exactly when nothing
// else wrote the state since: a store written by a build without the index
// (an older release, a member that received this store in a snapshot and
// applied entries before it was upgraded), or imported, has a stale or
// missing marker, and its index is rebuilt from a scan (once) before it is
// trusted. The index is outside what Hash and HashKV cover, so members with
// and without it agree on every hash; a snapshot carries it with its marker.

// leaseIndexKey returns 0x13 + id + key.
func leaseIndexKey(id int64, key []byte) []byte {
	k := make([]byte, 0, 9+len(key))
	k = binary.BigEndian.AppendUint64(append(k, prefixLease), uint64(id))
	return append(k, key...)
}

// indexLease records in b that key moved from lease prev to lease next
// (0: none).
func indexLease(b *pebble.Batch, key []byte, prev, next int64) error {
	if prev == next {
		return nil
	}
	if prev != 0 {
		if err := b.Delete(leaseIndexKey(prev, key), nil); err != nil {
			return err
		}
	}
	if next == 0 {
		return nil
	}
	k := leaseIndexKey(next, key)
	return b.Set(k, seal(k, nil), nil)
}

var (
	leaseIndexStart = []byte{prefixLease}
	leaseIndexEnd   = []byte{prefixLease + 1}
)

// loadLeaseIndexMark sets Store.leaseIdx at open and after a restore: the
// index is complete if its marker equals the applied index and term
// (applied, nil if none), or if the store is new (no applied index, no
// revision: nothing written yet).
func (s *Store) loadLeaseIndexMark(applied []byte) error {
	mark, err := readMeta(s.db, metaLeaseIdx, 16)
	if err != nil {
		return err
	}
	if applied == nil && mark == nil {
		rev, err := readMeta(s.db, metaRev, 8)
		if err != nil {
			return err
		}
		s.leaseIdx.Store(rev == nil)
		return nil
	}
	s.leaseIdx.Store(mark != nil && bytes.Equal(mark, applied))
	return nil
}

// LeasedKeys calls fn for every live key at the current revision that is
// attached to a lease, in lease then key order: what a lessor rebuilds its
// attachments from at open and after a restore. It reads the lease index,
// rebuilding it first from a scan of the whole keyspace if it is not
// complete (see above). key is valid only during the call. Only the apply
// path may call it (serially with applies).
func (s *Store) LeasedKeys(fn func(key []byte, lease int64) error) error {
	if !s.leaseIdx.Load() {
		if err := s.rebuildLeaseIndex(); err != nil {
			return err
		}
	}
	return s.readLeaseIndex(fn)
}

// readLeaseIndex calls fn for every entry of the lease index.
func (s *Store) readLeaseIndex(fn func(key []byte, lease int64) error) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: leaseIndexStart, UpperBound: leaseIndexEnd})
	if err != nil {
		return fmt.Errorf("mvcc: lease index iterator: %w", err)
	}
	for valid := it.First(); valid; valid = it.Next() {
		k := it.Key()
		v, err := it.ValueAndErr()
		var p []byte
		if err == nil {
			p, err = record.Open(k, v)
		}
		if err == nil && (len(k) < 9 || len(p) != 0) {
			err = corruptf("lease index key %q: malformed", k)
		}
		if err == nil {
			err = fn(k[9:], int64(binary.BigEndian.Uint64(k[1:9])))
		}
		if err != nil {
			return closeIter(it, err)
		}
	}
	return closeIter(it, nil)
}

// ClearLeaseIndex records that no key is attached to a lease (there is no
// lease): an incomplete index is emptied and marked complete without a
// scan. A complete index is left as it is. Only the apply path may call it.
func (s *Store) ClearLeaseIndex() error {
	if s.leaseIdx.Load() {
		return nil
	}
	return s.rewriteLeaseIndex(nil)
}

// rebuildLeaseIndex rewrites the lease index from a scan of the keyspace.
func (s *Store) rebuildLeaseIndex() error {
	return s.rewriteLeaseIndex(s.ScanLeasedKeys)
}

// rewriteLeaseIndex empties the lease index, writes what scan reports (if
// not nil) in bounded batches and marks the index complete at the applied
// index in the last batch. A crash half way leaves the marker stale, so the
// next open rebuilds again.
func (s *Store) rewriteLeaseIndex(scan func(fn func(key []byte, lease int64) error) error) error {
	b := s.db.NewBatch()
	defer func() { _ = b.Close() }()
	if err := b.DeleteRange(leaseIndexStart, leaseIndexEnd, nil); err != nil {
		return err
	}
	if scan != nil {
		err := scan(func(key []byte, lease int64) error {
			if err := indexLease(b, key, 0, lease); err != nil {
				return err
			}
			if b.Len() < bulkBatchBytes {
				return nil
			}
			if err := b.Commit(pebble.NoSync); err != nil {
				return fmt.Errorf("mvcc: lease index batch: %w", err)
			}
			b.Reset()
			return nil
		})
		if err != nil {
			return err
		}
	}
	a := s.applied.Load()
	if err := setMeta(b, metaLeaseIdx, appliedBytes(a.index, a.term)); err != nil {
		return err
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("mvcc: lease index batch: %w", err)
	}
	s.leaseIdx.Store(true)
	return nil
}

// ErrLeaseIndex is returned by VerifyLeaseIndex when the lease index
// differs from the keyspace.
var ErrLeaseIndex = errors.New("mvcc: lease index differs from the keyspace")

// VerifyLeaseIndex compares a complete lease index with a scan of the
// keyspace (an incomplete one is not trusted, so there is nothing to
// check). For tests and checks, while no apply runs.
func (s *Store) VerifyLeaseIndex() error {
	if !s.leaseIdx.Load() {
		return nil
	}
	var want, got [][]byte
	rec := func(dst *[][]byte) func(key []byte, lease int64) error {
		return func(key []byte, lease int64) error {
			*dst = append(*dst, leaseIndexKey(lease, key))
			return nil
		}
	}
	if err := s.ScanLeasedKeys(rec(&want)); err != nil {
		return err
	}
	if err := s.readLeaseIndex(rec(&got)); err != nil {
		return err
	}
	slices.SortFunc(want, bytes.Compare)
	if !slices.EqualFunc(want, got, bytes.Equal) {
		return fmt.Errorf("%w: the keyspace has %d leased keys %q, the index %q", ErrLeaseIndex, len(want), want, got)
	}
	return nil
}
