package storage

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// moveBatchBytes bounds one batch of CopyLog.
const moveBatchBytes = 4 << 20

// keysEnd bounds every key this package owns: [logStart, keysEnd) holds
// the entries (0x01) and the metadata (0x02).
var keysEnd = []byte{prefixMeta + 1}

// HasLog reports whether db holds any raft log key: entries, HardState,
// snapshot metadata or truncation point. A member's state database made
// before the raft log had a database of its own holds them.
func HasLog(db *pebble.DB) (bool, error) {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: logStart, UpperBound: keysEnd})
	if err != nil {
		return false, readErr(err)
	}
	found := it.First()
	if err := it.Close(); err != nil {
		return false, readErr(err)
	}
	return found, nil
}

// CopyLog copies every raft log key of src into dst, byte for byte (the
// records stay sealed as they were and are checked when read), in bounded
// batches, and syncs dst's write-ahead log once they are all written: when
// CopyLog returns nil, dst durably holds the whole log of src. src is
// not changed. dst should be empty; keys it already holds are overwritten.
func CopyLog(dst, src *pebble.DB) (err error) {
	it, err := src.NewIter(&pebble.IterOptions{LowerBound: logStart, UpperBound: keysEnd})
	if err != nil {
		return readErr(err)
	}
	defer func() { err = errors.Join(err, it.Close()) }()
	b := dst.NewBatch()
	defer func() { b.Close() }()
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return readErr(err)
		}
		if err := b.Set(it.Key(), v, nil); err != nil {
			return err
		}
		if b.Len() < moveBatchBytes {
			continue
		}
		if err := b.Commit(pebble.NoSync); err != nil {
			return fmt.Errorf("storage: copy the raft log: %w", err)
		}
		b.Close()
		b = dst.NewBatch()
	}
	if err := it.Error(); err != nil {
		return readErr(err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("storage: copy the raft log: %w", err)
	}
	if err := dst.LogData(nil, pebble.Sync); err != nil {
		return fmt.Errorf("storage: sync the copied raft log: %w", err)
	}
	return nil
}

// DropLog deletes every raft log key from db, with one synced range
// deletion. It is the last step of moving the log out of a database that
// also holds the state, once CopyLog's copy is durable elsewhere.
func DropLog(db *pebble.DB) error {
	if err := db.DeleteRange(logStart, keysEnd, pebble.Sync); err != nil {
		return fmt.Errorf("storage: drop the raft log: %w", err)
	}
	return nil
}
