package mvcc

import (
	"bytes"

	"github.com/cockroachdb/pebble/v2"
)

// Comparer is the Pebble comparer for a database that holds a Store. It is
// Pebble's default bytewise comparer, under the same name and with the same
// order, so data directories written before it open unchanged, plus a Split
// that tells Pebble where the user-key part of a version key ends. With a
// Split and a bloom FilterPolicy (server/pebble.go) sstables carry filters
// over user keys, and the previous-version lookup of every put (visitKey,
// SeekPrefixGE) skips each table that holds no version of the key instead
// of reading its index and a data block: the case of every put of a new key.
//
// Filters are built with this Split and written to disk, so it is part of
// the on-disk format: it must never change under this name.
var Comparer = newComparer()

func newComparer() *pebble.Comparer {
	c := *pebble.DefaultComparer
	c.Split = splitUserKey
	c.ImmediateSuccessor = immediateSuccessor
	return &c
}

// encTerminator ends an encoded user key (appendVersionPrefix).
var encTerminator = []byte{0x00, 0x01}

// splitUserKey returns the length of k's prefix that names a user key: for a
// key of the version keyspace, 0x10 + enc(key) up to and including the first
// 0x00 0x01 (enc writes 0x00 only before 0xFF, so the first 0x00 0x01 is the
// terminator and the rest is the revision suffix); any other key (revision
// log, meta, other packages' keys, or a key that Pebble made up between two
// stored keys) is all prefix. Truncating at the first terminator keeps the
// order of prefixes that of keys, as Pebble requires.
func splitUserKey(k []byte) int {
	if len(k) == 0 || k[0] != prefixVersion {
		return len(k)
	}
	i := bytes.Index(k[1:], encTerminator)
	if i < 0 {
		return len(k)
	}
	return 1 + i + len(encTerminator)
}

// immediateSuccessor returns the smallest prefix key after the prefix key a:
// for a version prefix, the prefix's end (every longer key starting with it
// has it as its prefix); for any other key, a + 0x00, as Pebble's default.
func immediateSuccessor(dst, a []byte) []byte {
	if len(a) > len(encTerminator) && a[0] == prefixVersion && bytes.HasSuffix(a, encTerminator) && splitUserKey(a) == len(a) {
		return appendPrefixEnd(dst, a)
	}
	return append(append(dst, a...), 0x00)
}

// probeUserKey is the user key of the probe version: the empty key, which
// etcd refuses ("key is not provided"), so no stored version has it.
var probeUserKey = []byte{}

// hasPrefixSeek reports whether db was opened with Comparer's Split, by
// seeking, in an indexed batch that is never committed, the version of the
// probe key at revision 2 when only its version at revision 1 exists: with
// the Split, SeekPrefixGE finds it. Pebble's default comparer has no Split,
// and Pebble panics on SeekPrefixGE without one: the probe takes that panic
// for "no". Stores on such a database (tests, tools) read single keys with
// SeekGE as before.
func hasPrefixSeek(db *pebble.DB) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	b := db.NewIndexedBatch()
	defer b.Close()
	older := versionKey(probeUserKey, 1)
	if b.Set(older, nil, nil) != nil {
		return false
	}
	it, err := b.NewIter(nil)
	if err != nil {
		return false
	}
	defer it.Close()
	return it.SeekPrefixGE(versionKey(probeUserKey, 2)) && bytes.Equal(it.Key(), older)
}
