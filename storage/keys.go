package storage

import "encoding/binary"

// Key prefixes owned by this package (docs/architecture.md).
const (
	prefixLog  byte = 0x01
	prefixMeta byte = 0x02
)

// logKeyLen is the length of a raft log key: prefix + big-endian index.
const logKeyLen = 1 + 8

var (
	keyHardState = []byte{prefixMeta, 'h'}
	keySnapshot  = []byte{prefixMeta, 's'}
	keyTruncated = []byte{prefixMeta, 't'}

	// logStart and logEnd bound every raft log key: [logStart, logEnd).
	logStart = []byte{prefixLog}
	logEnd   = []byte{prefixLog + 1}
)

// appendLogKey appends the log key of index i to dst.
func appendLogKey(dst []byte, i uint64) []byte {
	dst = append(dst, prefixLog)
	return binary.BigEndian.AppendUint64(dst, i)
}

// logKey returns a freshly allocated log key for index i.
func logKey(i uint64) []byte {
	return appendLogKey(make([]byte, 0, logKeyLen), i)
}

// parseLogKey returns the index encoded in a log key, or false if k is not a
// well-formed log key.
func parseLogKey(k []byte) (uint64, bool) {
	if len(k) != logKeyLen || k[0] != prefixLog {
		return 0, false
	}
	return binary.BigEndian.Uint64(k[1:]), true
}
