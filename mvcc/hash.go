package mvcc

import (
	"bytes"
	"fmt"
	"hash"
	"hash/crc32"

	"github.com/cockroachdb/pebble"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// HashKV returns a crc32c over the key versions visible in history up to rev
// (0 = current), like etcd's HashKV: every version with compactRev <
// mod_revision <= rev, plus, for each key, the newest version <= compactRev
// if it is not a tombstone. Each version contributes its stored key and
// sealed value, in key order. The result is identical on every member at the
// same revision however far physical compaction has progressed. hashRev is
// the revision hashed; compactRev the compaction revision the set is defined
// by. Errors: ErrCompacted (0 < rev < compactRev), ErrFutureRev, corruption.
func (s *Store) HashKV(rev int64) (hash uint32, hashRev int64, compactRev int64, err error) {
	v, err := s.acquire()
	if err != nil {
		return 0, 0, 0, err
	}
	defer v.release()
	switch {
	case rev > 0 && rev < v.compactRev:
		return 0, 0, v.compactRev, ErrCompacted
	case rev > v.rev:
		return 0, 0, v.compactRev, ErrFutureRev
	case rev == 0:
		rev = v.rev
	}
	h := crc32.New(castagnoli)
	if err := hashVersions(v.snap, h, rev, v.compactRev); err != nil {
		return 0, 0, 0, err
	}
	return h.Sum32(), rev, v.compactRev, nil
}

// hashVersions feeds h the versions HashKV covers.
func hashVersions(src iterSource, h hash.Hash32, rev, compactRev int64) (err error) {
	it, err := src.NewIter(&pebble.IterOptions{LowerBound: stateStart, UpperBound: versionEnd})
	if err != nil {
		return fmt.Errorf("mvcc: new iterator: %w", err)
	}
	defer func() { err = closeIter(it, err) }()
	var prefix, seek []byte
	valid := it.First()
	for valid {
		p, mod, err := splitVersionKey(it.Key())
		if err != nil {
			return err
		}
		if !bytes.Equal(p, prefix) {
			prefix = append(prefix[:0], p...)
		}
		switch {
		case mod > rev:
			seek = appendRev(append(seek[:0], prefix...), rev)
			valid = it.SeekGE(seek)
			continue
		case mod > compactRev:
			err = hashVersion(it, h, true)
			valid = it.Next()
		default: // the newest version <= compactRev: the last one of this key
			err = hashVersion(it, h, false)
			seek = appendPrefixEnd(seek[:0], prefix)
			valid = it.SeekGE(seek)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// hashVersion verifies the version under it and hashes it; a tombstone is
// hashed only if withTombstone.
func hashVersion(it *pebble.Iterator, h hash.Hash32, withTombstone bool) error {
	v, err := it.ValueAndErr()
	if err != nil {
		return fmt.Errorf("mvcc: read value: %w", err)
	}
	p, err := openPayload(it.Key(), v)
	if err != nil {
		return err
	}
	if p[0] == tagTombstone && !withTombstone {
		return nil
	}
	h.Write(it.Key())
	h.Write(v)
	return nil
}
