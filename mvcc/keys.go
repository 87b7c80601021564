package mvcc

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/synod-db/synod/record"
)

// Key prefixes owned by this package (docs/architecture.md).
const (
	prefixVersion byte = 0x10 // 0x10 + enc(userkey) + ^rev.main (8 BE)
	prefixLog     byte = 0x11 // 0x11 + rev.main (8 BE) + rev.sub (8 BE)
	prefixMeta    byte = 0x12 // 0x12 + meta id
	prefixLease   byte = 0x13 // 0x13 + lease ID (8 BE) + userkey: the lease index
	prefixOthers  byte = 0x20 // first prefix ApplyOther may write
)

// Meta keys. Every value is record-sealed; integers are 8-byte big endian.
var (
	metaApplied  = []byte{prefixMeta, 0x01} // index(8) term(8)
	metaRev      = []byte{prefixMeta, 0x02} // current revision(8)
	metaCompact  = []byte{prefixMeta, 0x03} // scheduled (logical) compact revision(8, int64)
	metaFinished = []byte{prefixMeta, 0x04} // finished physical compaction revision(8, int64)
	metaProgress = []byte{prefixMeta, 0x05} // physical compaction in progress: rev(8) + resume key
	metaRestore  = []byte{prefixMeta, 0x06} // restore marker: 0x00 + received snapshot directory (an older release: a stream file path)
	metaLeaseIdx = []byte{prefixMeta, 0x07} // the lease index is complete at: index(8) term(8)
)

// Payload tags: the first byte of a sealed version or revision-log payload.
const (
	tagPut       byte = 0x01 // version: sub revision, then a marshaled mvccpb.KeyValue; log: followed by the user key
	tagTombstone byte = 0x02 // version: sub revision, nothing after it; log: followed by the user key
)

// versionHeaderLen is the length of a version payload's tag and sub revision
// (8 BE): the sub revision of the change within its main revision, which
// HashKV needs (etcd hashes revision main+sub) after compaction has trimmed
// the revision log.
const versionHeaderLen = 1 + 8

// revSuffixLen is the length of the inverted revision suffix of a version key.
const revSuffixLen = 8

var (
	stateStart = []byte{prefixVersion}
	versionEnd = []byte{prefixLog}
	logStart   = []byte{prefixLog}
)

// appendVersionPrefix appends 0x10 + enc(key) to dst. enc escapes 0x00 as
// 0x00 0xFF and terminates with 0x00 0x01, so encoded keys sort like the user
// keys and no encoded key is a prefix of another.
func appendVersionPrefix(dst, key []byte) []byte {
	dst = append(dst, prefixVersion)
	for {
		i := bytes.IndexByte(key, 0)
		if i < 0 {
			break
		}
		dst = append(dst, key[:i]...)
		dst = append(dst, 0x00, 0xFF)
		key = key[i+1:]
	}
	dst = append(dst, key...)
	return append(dst, 0x00, 0x01)
}

// versionPrefix returns 0x10 + enc(key).
func versionPrefix(key []byte) []byte {
	return appendVersionPrefix(make([]byte, 0, len(key)+3+revSuffixLen), key)
}

// appendRev appends the inverted revision suffix, so newer versions sort first.
func appendRev(dst []byte, rev int64) []byte {
	return binary.BigEndian.AppendUint64(dst, ^uint64(rev))
}

// versionKey returns the key of the version of key written at main revision rev.
func versionKey(key []byte, rev int64) []byte {
	return appendRev(versionPrefix(key), rev)
}

// appendPrefixEnd appends the smallest key greater than every key starting
// with prefix (a version prefix, which ends in the 0x00 0x01 terminator).
func appendPrefixEnd(dst, prefix []byte) []byte {
	dst = append(dst, prefix...)
	dst[len(dst)-1]++
	return dst
}

// splitVersionKey splits a stored version key into its prefix (0x10+enc) and
// main revision.
func splitVersionKey(k []byte) (prefix []byte, rev int64, err error) {
	n := len(k) - revSuffixLen
	if n < 3 || k[0] != prefixVersion || k[n-2] != 0x00 || k[n-1] != 0x01 {
		return nil, 0, fmt.Errorf("%w: malformed version key %q", record.ErrCorrupt, k)
	}
	return k[:n], int64(^binary.BigEndian.Uint64(k[n:])), nil
}

// logKey returns the revision-log key of change sub of main revision main.
func logKey(main, sub int64) []byte {
	k := make([]byte, 0, 17)
	k = append(k, prefixLog)
	k = binary.BigEndian.AppendUint64(k, uint64(main))
	return binary.BigEndian.AppendUint64(k, uint64(sub))
}

// splitLogKey returns the main revision of a revision-log key.
func splitLogKey(k []byte) (main int64, err error) {
	if len(k) != 17 || k[0] != prefixLog {
		return 0, fmt.Errorf("%w: malformed revision log key %q", record.ErrCorrupt, k)
	}
	return int64(binary.BigEndian.Uint64(k[1:9])), nil
}

// keyBounds turns an etcd [key, rangeEnd) into iterator bounds over version
// keys. rangeEnd empty means the single key; "\x00" means every key >= key.
// ok is false when the range is empty.
func keyBounds(key, rangeEnd []byte) (lower, upper []byte, ok bool) {
	lower = versionPrefix(key)
	switch {
	case len(rangeEnd) == 0:
		return lower, appendPrefixEnd(nil, lower), true
	case len(rangeEnd) == 1 && rangeEnd[0] == 0:
		return lower, versionEnd, true
	case bytes.Compare(key, rangeEnd) >= 0:
		return nil, nil, false
	default:
		return lower, versionPrefix(rangeEnd), true
	}
}

// seal frames payload for storage under key.
func seal(key, payload []byte) []byte {
	return record.Seal(make([]byte, 0, record.HeaderSize+len(payload)), key, payload)
}

// openPayload verifies a sealed value and checks it carries a tag byte.
func openPayload(key, value []byte) ([]byte, error) {
	p, err := record.Open(key, value)
	if err != nil {
		return nil, err
	}
	if len(p) == 0 || (p[0] != tagPut && p[0] != tagTombstone) {
		return nil, fmt.Errorf("%w: key %q: unknown payload tag", record.ErrCorrupt, key)
	}
	return p, nil
}

// openVersion verifies a sealed version stored under key and splits its
// payload into tag, sub revision and (for a put) the marshaled KeyValue,
// which is never empty: a stored version has a mod revision.
func openVersion(key, value []byte) (tag byte, sub int64, kv []byte, err error) {
	p, err := openPayload(key, value)
	if err != nil {
		return 0, 0, nil, err
	}
	if len(p) < versionHeaderLen || (p[0] == tagTombstone) != (len(p) == versionHeaderLen) {
		return 0, 0, nil, corruptf("key %q: malformed version payload", key)
	}
	return p[0], int64(binary.BigEndian.Uint64(p[1:versionHeaderLen])), p[versionHeaderLen:], nil
}

// framedTag returns the tag of a sealed version stored under key, checking
// the version's framing but not its record checksum. It is for a version a
// read only counts and never returns (a Range's keys past its limit, a
// count_only Range): the checksum of a 1 KiB value was half of what counting
// a key cost. Pebble's own block checksums still guard those bytes on disk;
// every version a read returns is verified in full (openVersion). A put
// always carries a KeyValue (a stored version has a mod revision) and a
// tombstone never does, so a damaged tag byte cannot turn one into the
// other unnoticed: the count stays exact under any damage to one byte.
func framedTag(key, value []byte) (byte, error) {
	const header = record.HeaderSize + versionHeaderLen
	if len(value) >= header {
		switch tag := value[record.HeaderSize]; {
		case tag == tagPut && len(value) > header, tag == tagTombstone && len(value) == header:
			return tag, nil
		}
	}
	return 0, corruptf("key %q: malformed version payload", key)
}

// corruptf returns an error wrapping record.ErrCorrupt.
func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{record.ErrCorrupt}, args...)...)
}
