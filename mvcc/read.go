package mvcc

import (
	"bytes"
	"context"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// iterSource is what reads go through: the DB, a pebble snapshot (concurrent
// reads) or the indexed apply batch (reads that see the entry's own writes).
type iterSource interface {
	NewIter(o *pebble.IterOptions) (*pebble.Iterator, error)
}

// ctxCheckEvery is how many keys a scan visits between context checks.
const ctxCheckEvery = 64

// visitFunc receives the version key and the payload after the tag of a live
// (non-tombstone) version. Both alias iterator memory valid only during the call.
type visitFunc func(vk, kvBytes []byte) error

// scan calls fn, in key order, for every user key in [key, rangeEnd) whose
// newest version with mod_revision <= rev is not a tombstone. One seek per
// user key: versions newer than rev are skipped with a seek to enc(key)+^rev,
// older versions with a seek to the next user key. A range of one key (no
// rangeEnd) ends at that key's version: stepping on through its older
// versions, as a wider range must, cost a Next and a second seek per
// single-key read (etcd's stm benchmark reads two keys per transaction).
// values, if not nil, is asked before each version whether fn needs its
// payload: when it says no, the version is only counted (fn gets a nil
// payload), and its record checksum is not verified (framedTag).
func scan(ctx context.Context, src iterSource, key, rangeEnd []byte, rev int64, values func() bool, fn visitFunc) (err error) {
	lower, upper, ok := keyBounds(key, rangeEnd)
	if !ok {
		return nil
	}
	it, err := src.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("mvcc: new iterator: %w", err)
	}
	defer func() { err = closeIter(it, err) }()
	seek := appendRev(append(make([]byte, 0, len(lower)+revSuffixLen), lower...), rev)
	valid := it.SeekGE(seek)
	for n := 1; valid; n++ {
		if n%ctxCheckEvery == 1 { // the first key, then every ctxCheckEvery
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		prefix, mod, err := splitVersionKey(it.Key())
		if err != nil {
			return err
		}
		seek = append(seek[:0], prefix...)
		if mod > rev {
			valid = it.SeekGE(appendRev(seek, rev))
			continue
		}
		if values == nil || values() {
			err = visitVersion(it, fn)
		} else {
			err = countVersion(it, fn)
		}
		if err != nil {
			return err
		}
		if len(rangeEnd) == 0 {
			return nil
		}
		valid = nextUserKey(it, seek)
	}
	return nil
}

// visitVersion opens the version under the iterator and hands it to fn if live.
func visitVersion(it *pebble.Iterator, fn visitFunc) error {
	v, err := it.ValueAndErr()
	if err != nil {
		return fmt.Errorf("mvcc: read value: %w", err)
	}
	tag, _, data, err := openVersion(it.Key(), v)
	if err != nil {
		return err
	}
	if tag == tagTombstone {
		return nil
	}
	return fn(it.Key(), data)
}

// countVersion hands fn the version under the iterator, with a nil payload,
// if it is live; only its framing is checked (framedTag).
func countVersion(it *pebble.Iterator, fn visitFunc) error {
	v, err := it.ValueAndErr()
	if err != nil {
		return fmt.Errorf("mvcc: read value: %w", err)
	}
	tag, err := framedTag(it.Key(), v)
	if err != nil || tag == tagTombstone {
		return err
	}
	return fn(it.Key(), nil)
}

// nextUserKey moves the iterator from a version of prefix to the newest
// version of the next user key: one Next (the common single-version case),
// else a seek past every version of prefix. prefix is clobbered.
func nextUserKey(it *pebble.Iterator, prefix []byte) bool {
	if !it.Next() {
		return false
	}
	if !bytes.HasPrefix(it.Key(), prefix) {
		return true
	}
	return it.SeekGE(appendPrefixEnd(prefix[:0], prefix))
}

// closeIter closes it and returns the first of err, the iterator's error.
func closeIter(it *pebble.Iterator, err error) error {
	if cerr := it.Close(); err == nil && cerr != nil {
		return fmt.Errorf("mvcc: iterator: %w", storageErr(cerr))
	}
	return err
}

// decodeKV unmarshals the payload of a live version stored under vk.
func decodeKV(vk, b []byte) (*mvccpb.KeyValue, error) {
	kv := &mvccpb.KeyValue{}
	if err := proto.Unmarshal(b, kv); err != nil {
		return nil, corruptf("key %q: unmarshal KeyValue: %v", vk, err)
	}
	return kv, nil
}

// getKV returns the version of key visible at rev, or nil if the key does not
// exist at rev. prefix: see visitKey.
func getKV(src iterSource, prefix bool, key []byte, rev int64) (kv *mvccpb.KeyValue, err error) {
	err = visitKey(src, prefix, key, rev, func(vk, b []byte) error {
		kv, err = decodeKV(vk, b)
		return err
	})
	return kv, err
}

// visitGeneration is the visitFunc that fills g with what a put needs of
// the previous version (live, create revision, version, lease), without
// decoding (and copying) its key and value. The record's checksum is
// verified as for any read. A put finds the version with its group's
// lookup (lookup.go).
func visitGeneration(g *generation) visitFunc {
	return func(vk, b []byte) (err error) {
		g.live = true
		g.create, g.version, g.lease, err = decodeGeneration(vk, b)
		return err
	}
}

// KeyValue field numbers (mvccpb.KeyValue) that reads decode without
// unmarshalling the whole message.
const (
	fieldKey     protowire.Number = 1
	fieldCreate  protowire.Number = 2
	fieldVersion protowire.Number = 4
	fieldLease   protowire.Number = 6
)

// decodeGeneration reads create_revision, version and lease from a
// marshalled KeyValue stored under vk, skipping the other fields.
func decodeGeneration(vk, b []byte) (create, version, lease int64, err error) {
	err = kvFields(vk, b, func(num protowire.Number, v uint64) {
		switch num {
		case fieldCreate:
			create = int64(v)
		case fieldVersion:
			version = int64(v)
		case fieldLease:
			lease = int64(v)
		}
	}, nil)
	return create, version, lease, err
}

// decodeKeyLease reads the key and the lease from a marshalled KeyValue
// stored under vk, without copying the value. key aliases b.
func decodeKeyLease(vk, b []byte) (key []byte, lease int64, err error) {
	err = kvFields(vk, b, func(num protowire.Number, v uint64) {
		if num == fieldLease {
			lease = int64(v)
		}
	}, func(num protowire.Number, v []byte) {
		if num == fieldKey {
			key = v
		}
	})
	return key, lease, err
}

// kvFields walks a marshalled KeyValue stored under vk: varint gets every
// varint field, bytes (if not nil) every length-delimited one; other wire
// types are skipped. Malformed input is corruption.
func kvFields(vk, b []byte, varint func(protowire.Number, uint64), bytes func(protowire.Number, []byte)) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return corruptf("key %q: KeyValue field tag: %v", vk, protowire.ParseError(n))
		}
		b = b[n:]
		var m int
		switch {
		case typ == protowire.VarintType:
			var v uint64
			v, m = protowire.ConsumeVarint(b)
			if m >= 0 {
				varint(num, v)
			}
		case typ == protowire.BytesType && bytes != nil:
			var v []byte
			v, m = protowire.ConsumeBytes(b)
			if m >= 0 {
				bytes(num, v)
			}
		default:
			m = protowire.ConsumeFieldValue(num, typ, b)
		}
		if m < 0 {
			return corruptf("key %q: KeyValue field %d: %v", vk, num, protowire.ParseError(m))
		}
		b = b[m:]
	}
	return nil
}

// visitKey hands fn the version of key visible at rev, if live. It is the
// point form of scan (and answers as scan would): an iterator bounded to
// the key's versions and one seek to the newest version at or below rev,
// since versions sort newest first; no step to a next key. prefix is whether
// src's DB orders with Comparer (Store.prefixSeek): the seek is then a
// SeekPrefixGE, which consults the sstables' bloom filters and skips every
// table that holds no version of key, in the last level too (Pebble skips
// its filters there by default, where a key is likely to exist; a put of a
// new key, the bulk of a store's growth, finds its key in no level).
func visitKey(src iterSource, prefix bool, key []byte, rev int64, fn visitFunc) (err error) {
	// One allocation holds the lower bound (the key's version prefix), the
	// upper bound (the prefix's end) and the seek key (prefix + rev); each
	// slice is capped so that appending the next cannot overwrite it.
	n := len(key) + 3 + revSuffixLen
	buf := appendVersionPrefix(make([]byte, 0, 3*n), key)
	lower := buf[:len(buf):len(buf)]
	upper := appendPrefixEnd(buf[len(buf):len(buf)], lower)
	seek := appendRev(append(upper[len(upper):], lower...), rev)
	it, err := src.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper[:len(upper):len(upper)], UseL6Filters: prefix})
	if err != nil {
		return fmt.Errorf("mvcc: new iterator: %w", err)
	}
	defer func() { err = closeIter(it, err) }()
	var found bool
	if prefix {
		found = it.SeekPrefixGE(seek)
	} else {
		found = it.SeekGE(seek)
	}
	if !found {
		return nil
	}
	return visitVersion(it, fn)
}

// ScanLeasedKeys calls fn, in key order, for every live key at the current
// revision that is attached to a lease (its latest version names a lease).
// key aliases iterator memory valid only during the call. It visits every
// live key, reading only the key and lease fields of each version (no copy
// of the value): what the lease index is rebuilt from, and what checks
// compare the index with.
func (s *Store) ScanLeasedKeys(fn func(key []byte, lease int64) error) error {
	v, err := s.acquire()
	if err != nil {
		return err
	}
	defer v.release()
	return scan(context.Background(), v.snap, nil, []byte{0}, v.rev, nil, func(vk, b []byte) error {
		key, lease, err := decodeKeyLease(vk, b)
		if err != nil || lease == 0 {
			return err
		}
		return fn(key, lease)
	})
}
