package storage

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/record"
)

// ErrRead marks a read of the raft log that failed (an I/O error, or damage
// Pebble found). raft panics on it; the raft loop turns that panic into its
// fatal error, so the member stops saying what failed.
var ErrRead = errors.New("storage: read raft log")

// readErr wraps an error reading the raft log in ErrRead; Pebble's own
// corruption errors (a block failing its checksum) also wrap
// record.ErrCorrupt, without the "<corruption detail carrier>" line Pebble
// v2 joins to them (its report, which the member logs on its own).
func readErr(err error) error {
	if pebble.IsCorruptionError(err) && !errors.Is(err, record.ErrCorrupt) {
		if info := pebble.ExtractDataCorruptionInfo(err); info != nil {
			err = info.Details
		}
		return fmt.Errorf("%w: %w: %w", record.ErrCorrupt, ErrRead, err)
	}
	return fmt.Errorf("%w: %w", ErrRead, err)
}

// corruptf returns an error wrapping record.ErrCorrupt: stored data that can
// not be served.
func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: storage: %s", record.ErrCorrupt, fmt.Sprintf(format, args...))
}

// decodeEntry verifies and decodes a raft log record found under key. The
// returned entry does not alias value. Any failure wraps record.ErrCorrupt.
// It must not panic on any input (FuzzDecodeEntry).
func decodeEntry(key, value []byte) (*raftpb.Entry, error) {
	idx, ok := parseLogKey(key)
	if !ok {
		return nil, corruptf("malformed raft log key %x", key)
	}
	payload, err := record.Open(key, value)
	if err != nil {
		return nil, err
	}
	return decodePayload(idx, payload)
}

// encodeTruncated returns the payload of the truncation point record.
func encodeTruncated(index, term uint64) []byte {
	b := make([]byte, 0, 16)
	b = binary.BigEndian.AppendUint64(b, index)
	return binary.BigEndian.AppendUint64(b, term)
}

// decodeTruncated parses the payload of the truncation point record.
func decodeTruncated(p []byte) (index, term uint64, err error) {
	if len(p) != 16 {
		return 0, 0, corruptf("truncation point: %d bytes, want 16", len(p))
	}
	return binary.BigEndian.Uint64(p), binary.BigEndian.Uint64(p[8:]), nil
}

// setSealed adds key → Seal(payload) to b.
func setSealed(b *pebble.Batch, key, payload []byte) error {
	return b.Set(key, record.Seal(nil, key, payload), nil)
}

// setProto adds key → Seal(marshal(m)) to b.
func setProto(b *pebble.Batch, key []byte, m proto.Message) error {
	payload, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("storage: marshal %T: %w", m, err)
	}
	return setSealed(b, key, payload)
}

// getRecord reads and verifies the record under key and hands its payload to
// decode (the payload is only valid during the call). It reports false,
// without calling decode, when the key is absent.
func getRecord(db pebble.Reader, key []byte, decode func(payload []byte) error) (bool, error) {
	value, closer, err := db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("storage: read %x: %w", key, err)
	}
	defer closer.Close()
	payload, err := record.Open(key, value)
	if err != nil {
		return true, err
	}
	return true, decode(payload)
}

// getProto reads, verifies and unmarshals the record under key into m. It
// reports false when the key is absent.
func getProto(db pebble.Reader, key []byte, m proto.Message) (bool, error) {
	return getRecord(db, key, func(p []byte) error {
		if err := proto.Unmarshal(p, m); err != nil {
			return corruptf("%x: %v", key, err)
		}
		return nil
	})
}

// decodePayload decodes an opened entry payload stored under index i. The
// entry does not alias p: proto.Unmarshal copies bytes fields.
func decodePayload(i uint64, p []byte) (*raftpb.Entry, error) {
	e := new(raftpb.Entry)
	if err := proto.Unmarshal(p, e); err != nil {
		return nil, corruptf("raft log entry %d: %v", i, err)
	}
	if e.GetIndex() != i {
		return nil, corruptf("raft log entry stored at index %d claims index %d", i, e.GetIndex())
	}
	return e, nil
}
