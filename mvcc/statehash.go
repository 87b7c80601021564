package mvcc

import (
	"fmt"
	"hash/crc32"
)

// Hash returns a crc32c of the whole replicated state at the current
// revision (etcd's deprecated Maintenance.Hash, which hashes its whole
// backend) and that revision. It covers what HashKV(0) covers, then every
// key and stored value >= 0x20 (membership, alarms and whatever else is
// written through ApplyOther), so two members that applied the same entries
// answer the same hash however far each one's background physical
// compaction has got. Errors: corruption, ErrClosed.
func (s *Store) Hash() (hash uint32, rev int64, err error) {
	v, err := s.acquire()
	if err != nil {
		return 0, 0, err
	}
	defer v.release()
	h := crc32.New(castagnoli)
	if err := hashHistory(v.snap, h, v.rev, v.compactRev); err != nil {
		return 0, 0, err
	}
	it, err := v.snap.NewIter(nil)
	if err != nil {
		return 0, 0, fmt.Errorf("mvcc: new iterator: %w", err)
	}
	for valid := it.SeekGE([]byte{prefixOthers}); valid; valid = it.Next() {
		h.Write(it.Key())
		val, err := it.ValueAndErr()
		if err != nil {
			return 0, 0, closeIter(it, fmt.Errorf("mvcc: hash read: %w", err))
		}
		h.Write(val)
	}
	if err := closeIter(it, nil); err != nil {
		return 0, 0, err
	}
	return h.Sum32(), v.rev, nil
}
