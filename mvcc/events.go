package mvcc

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Events reads the revision log from fromRev on, up to the current revision:
// the changes in revision then sub-revision order, PUT with the kv written,
// DELETE with Kv{Key, ModRevision} (as etcd's watch). At most limit events
// (limit <= 0: no limit), except that a revision is never split: the last
// revision returned is complete. ErrCompacted if fromRev < CompactRev().
func (s *Store) Events(fromRev int64, limit int) ([]*mvccpb.Event, error) {
	v, err := s.acquire()
	if err != nil {
		return nil, err
	}
	defer v.release()
	if fromRev < v.compactRev {
		return nil, ErrCompacted
	}
	fromRev = max(fromRev, 1)
	if fromRev > v.rev {
		return nil, nil
	}
	return readEvents(v.snap, fromRev, v.rev, limit)
}

// openLogEntry verifies the revision-log entry under it and returns its
// payload: the tag, then the user key. It aliases iterator memory.
func openLogEntry(it *pebble.Iterator) ([]byte, error) {
	v, err := it.ValueAndErr()
	if err != nil {
		return nil, fmt.Errorf("mvcc: read log: %w", err)
	}
	return openPayload(it.Key(), v)
}

// readEvents reads the log entries with fromRev <= main <= toRev.
func readEvents(snap *pebble.Snapshot, fromRev, toRev int64, limit int) (evs []*mvccpb.Event, err error) {
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: logKey(fromRev, 0), UpperBound: logKey(toRev+1, 0)})
	if err != nil {
		return nil, fmt.Errorf("mvcc: new iterator: %w", err)
	}
	defer func() { err = closeIter(it, err) }()
	lastRev := int64(0)
	for valid := it.First(); valid; valid = it.Next() {
		main, err := splitLogKey(it.Key())
		if err != nil {
			return nil, err
		}
		if limit > 0 && len(evs) >= limit && main != lastRev {
			break
		}
		ev, err := readEvent(snap, it, main)
		if err != nil {
			return nil, err
		}
		if ev != nil {
			evs, lastRev = append(evs, ev), main
		}
	}
	return evs, nil
}

// readEvent decodes the log pointer under it; a PUT reads the version it
// points to (never compacted: its revision is >= the compaction revision).
// It returns nil for a put overwritten by a delete of the same key in the
// same revision (which the API edge forbids).
func readEvent(snap *pebble.Snapshot, it *pebble.Iterator, main int64) (*mvccpb.Event, error) {
	p, err := openLogEntry(it)
	if err != nil {
		return nil, err
	}
	key := append([]byte(nil), p[1:]...)
	if p[0] == tagTombstone {
		return &mvccpb.Event{Type: mvccpb.Event_DELETE, Kv: &mvccpb.KeyValue{Key: key, ModRevision: main}}, nil
	}
	vk := versionKey(key, main)
	val, closer, err := snap.Get(vk)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, corruptf("revision log %d points to missing version of %q", main, key)
	}
	if err != nil {
		return nil, fmt.Errorf("mvcc: read version: %w", storageErr(err))
	}
	defer closer.Close()
	tag, _, data, err := openVersion(vk, val)
	if err != nil {
		return nil, err
	}
	if tag != tagPut {
		return nil, nil // put then deleted in the same revision: the DELETE pointer follows
	}
	kv, err := decodeKV(vk, data)
	if err != nil {
		return nil, err
	}
	return &mvccpb.Event{Type: mvccpb.Event_PUT, Kv: kv}, nil
}
