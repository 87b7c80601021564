package mvcc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"slices"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// etcdKeyBucket is the name of etcd's bolt bucket of revisions, the first
// thing etcd's HashKV hashes.
var etcdKeyBucket = []byte("key")

// HashKV returns exactly the hash etcd's HashKV returns for the same history
// at rev (0 = current) and compaction revision: a crc32c over "key" and then,
// in revision order, the (key, value) records of etcd's "key" bucket that
// etcd's kvHasher takes, where a record's key is main(8 BE) '_' sub(8 BE),
// plus 't' for a tombstone, and its value the marshaled mvccpb.KeyValue
// (KeyValue{Key} for a tombstone). Those are every change with compactRev <
// main <= rev, and, of each key's newest version <= compactRev (which
// compaction keeps unless it is a tombstone), the ones etcd's index Keep(rev)
// holds: the key has no change in (compactRev, rev] or no key at all is
// live at rev (etcd then skips no record below compactRev+1). The result is
// the same on every member however far physical compaction has progressed
// (etcd's record set as if its compaction had finished). hashRev is the
// revision hashed; compactRev the compaction revision, -1 if none, as etcd's.
// etcd's client HashKV answers a hash at exactly a recent compaction's
// revision from the hash it recorded while compacting, with the previous
// compaction revision, until it restarts; the client API here does not (so
// every member answers alike, restarted or not); the peer service does
// (HashByRev), for the compaction hash check. Errors: ErrCompacted (0 < rev <
// compactRev), ErrFutureRev, corruption.
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
	h, err := hashAt(v.snap, rev, v.compactRev)
	if err != nil {
		return 0, 0, 0, err
	}
	return h, rev, v.compactRev, nil
}

// keptVersion is a key's newest version <= the compaction revision, a put.
type keptVersion struct {
	main, sub int64
	vk        []byte // its version key
	newer     bool   // the key has a change in (compactRev, rev]
}

// hashKept feeds h the versions <= compactRev that etcd hashes, in revision
// order (all of them precede every change after compactRev). Memory is one
// entry per key with such a version.
func hashKept(snap *pebble.Snapshot, h hash.Hash32, rev, compactRev int64) error {
	return etcdKept(snap, rev, compactRev, true, func(rk, data []byte) error {
		h.Write(rk)
		h.Write(data)
		return nil
	})
}

// etcdKept calls emit with etcd's key-bucket record of each key's newest
// version <= compactRev that is a put (what etcd's compaction keeps), in
// revision order; with hashed, only those etcd's HashKV at rev takes.
func etcdKept(snap *pebble.Snapshot, rev, compactRev int64, hashed bool, emit func(rk, data []byte) error) error {
	if compactRev < 1 {
		return nil // no version is <= compactRev
	}
	kept, anyLive, err := collectKept(snap, rev, compactRev)
	if err != nil {
		return err
	}
	slices.SortFunc(kept, func(a, b keptVersion) int {
		if a.main != b.main {
			return compareInt64(a.main, b.main)
		}
		return compareInt64(a.sub, b.sub)
	})
	var rk []byte
	for _, k := range kept {
		// etcd's Keep(rev) holds the version iff it is the key's newest <=
		// rev; an empty Keep (no key live at rev) filters nothing.
		if hashed && k.newer && anyLive {
			continue
		}
		tag, sub, data, err := getVersion(snap, k.vk)
		if err != nil {
			return err
		}
		if tag != tagPut || sub != k.sub {
			return corruptf("version %q changed under a snapshot", k.vk)
		}
		rk = appendEtcdRev(rk[:0], k.main, k.sub, false)
		if err := emit(rk, data); err != nil {
			return err
		}
	}
	return nil
}

// collectKept returns, for each key, its newest version <= compactRev if
// that is a put, and whether any key is live at rev.
func collectKept(snap *pebble.Snapshot, rev, compactRev int64) (kept []keptVersion, anyLive bool, err error) {
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: stateStart, UpperBound: versionEnd})
	if err != nil {
		return nil, false, fmt.Errorf("mvcc: new iterator: %w", err)
	}
	defer func() { err = closeIter(it, err) }()
	var seek []byte
	for valid := it.First(); valid; {
		p, _, err := splitVersionKey(it.Key())
		if err != nil {
			return nil, false, err
		}
		prefix := bytes.Clone(p)
		// The newest version <= rev: is the key live at rev, and did it
		// change after compactRev?
		newer := false
		seek = appendRev(append(seek[:0], prefix...), rev)
		if it.SeekGE(seek) && bytes.HasPrefix(it.Key(), prefix) {
			_, mod, err := splitVersionKey(it.Key())
			if err != nil {
				return nil, false, err
			}
			tag, err := versionTag(it)
			if err != nil {
				return nil, false, err
			}
			anyLive = anyLive || tag == tagPut
			newer = mod > compactRev
		}
		// The newest version <= compactRev.
		seek = appendRev(append(seek[:0], prefix...), compactRev)
		if it.SeekGE(seek) && bytes.HasPrefix(it.Key(), prefix) {
			_, mod, err := splitVersionKey(it.Key())
			if err != nil {
				return nil, false, err
			}
			v, err := it.ValueAndErr()
			if err != nil {
				return nil, false, fmt.Errorf("mvcc: read value: %w", err)
			}
			tag, sub, _, err := openVersion(it.Key(), v)
			if err != nil {
				return nil, false, err
			}
			if tag == tagPut {
				kept = append(kept, keptVersion{main: mod, sub: sub, vk: bytes.Clone(it.Key()), newer: newer})
			}
		}
		valid = it.SeekGE(appendPrefixEnd(seek[:0], prefix))
	}
	return kept, anyLive, nil
}

// versionTag verifies the version under it and returns its tag.
func versionTag(it *pebble.Iterator) (byte, error) {
	v, err := it.ValueAndErr()
	if err != nil {
		return 0, fmt.Errorf("mvcc: read value: %w", err)
	}
	tag, _, _, err := openVersion(it.Key(), v)
	return tag, err
}

// hashChanges feeds h every change with compactRev < main <= rev, in
// revision order, from the revision log.
func hashChanges(snap *pebble.Snapshot, h hash.Hash32, rev, compactRev int64) error {
	return etcdChanges(snap, rev, compactRev, func(rk, data []byte) error {
		h.Write(rk)
		h.Write(data)
		return nil
	})
}

// etcdChanges calls emit with etcd's key-bucket record (revision key,
// marshaled KeyValue) of every change with compactRev < main <= rev, in
// revision order, from the revision log.
func etcdChanges(snap *pebble.Snapshot, rev, compactRev int64, emit func(rk, data []byte) error) (err error) {
	lower := logStart
	if compactRev >= 0 {
		lower = logKey(compactRev+1, 0)
	}
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: logKey(rev+1, 0)})
	if err != nil {
		return fmt.Errorf("mvcc: new iterator: %w", err)
	}
	defer func() { err = closeIter(it, err) }()
	var rk, tomb []byte
	for valid := it.First(); valid; valid = it.Next() {
		main, err := splitLogKey(it.Key())
		if err != nil {
			return err
		}
		sub := int64(binary.BigEndian.Uint64(it.Key()[9:17]))
		p, err := openLogEntry(it)
		if err != nil {
			return err
		}
		key := p[1:]
		vk := versionKey(key, main)
		tag, vsub, data, err := getVersion(snap, vk)
		if errors.Is(err, pebble.ErrNotFound) {
			return corruptf("revision log %d/%d points to missing version of %q", main, sub, key)
		}
		if err != nil {
			return err
		}
		if vsub != sub {
			continue // overwritten in the same revision (the API edge forbids it)
		}
		if tag != p[0] {
			return corruptf("revision log %d/%d disagrees with the version of %q", main, sub, key)
		}
		if tag == tagTombstone {
			tomb, err = marshalTombstone(tomb[:0], key)
			if err != nil {
				return err
			}
			data = tomb
		}
		rk = appendEtcdRev(rk[:0], main, sub, tag == tagTombstone)
		if err := emit(rk, data); err != nil {
			return err
		}
	}
	return nil
}

// getVersion reads and opens the version stored under vk. data is a copy.
func getVersion(snap *pebble.Snapshot, vk []byte) (tag byte, sub int64, data []byte, err error) {
	val, closer, err := snap.Get(vk)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, 0, nil, err
	}
	if err != nil {
		return 0, 0, nil, fmt.Errorf("mvcc: read version: %w", storageErr(err))
	}
	defer closer.Close()
	tag, sub, data, err = openVersion(vk, val)
	return tag, sub, bytes.Clone(data), err
}

// appendEtcdRev appends etcd's bolt key of a revision: main(8 BE) '_'
// sub(8 BE), and 't' for a tombstone.
func appendEtcdRev(dst []byte, main, sub int64, tombstone bool) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(main))
	dst = append(dst, '_')
	dst = binary.BigEndian.AppendUint64(dst, uint64(sub))
	if tombstone {
		dst = append(dst, 't')
	}
	return dst
}

// marshalTombstone appends the value etcd stores for a deletion of key:
// mvccpb.KeyValue{Key: key}.
func marshalTombstone(dst, key []byte) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.MarshalAppend(dst, &mvccpb.KeyValue{Key: key})
	if err != nil {
		return nil, fmt.Errorf("mvcc: marshal KeyValue: %w", err)
	}
	return b, nil
}
