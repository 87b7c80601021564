// Package record frames every value synod stores on disk with a checksum.
//
// A sealed record is crc32c(key || payload) as 4 big-endian bytes followed by
// the payload. Binding the key into the checksum means a value that was
// written under one key and found under another (a misdirected write, a torn
// page, a bit flip in either key or value) is reported as corrupt instead of
// being served. The package is pure: no I/O, safe for concurrent use.
package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// ErrCorrupt is returned (wrapped) when a stored record fails its checksum or
// is too short to hold one. Callers must stop serving the data and surface it.
var ErrCorrupt = errors.New("synod: stored record failed its checksum")

var table = crc32.MakeTable(crc32.Castagnoli)

// HeaderSize is the number of bytes Seal adds in front of a payload.
const HeaderSize = 4

// Sum returns the checksum Seal stores for key and payload.
func Sum(key, payload []byte) uint32 {
	c := crc32.Update(0, table, key)
	return crc32.Update(c, table, payload)
}

// Seal appends the sealed form of payload, stored under key, to dst and
// returns the extended slice.
func Seal(dst, key, payload []byte) []byte {
	var h [HeaderSize]byte
	binary.BigEndian.PutUint32(h[:], Sum(key, payload))
	dst = append(dst, h[:]...)
	return append(dst, payload...)
}

// SealInPlace seals a record built in place: sealed holds HeaderSize bytes
// of room followed by the payload, and SealInPlace writes the checksum of
// key and that payload into the room. The result is what Seal(nil, key,
// sealed[HeaderSize:]) returns, without copying the payload. It panics if
// sealed is shorter than HeaderSize (a caller bug).
func SealInPlace(key, sealed []byte) {
	binary.BigEndian.PutUint32(sealed[:HeaderSize], Sum(key, sealed[HeaderSize:]))
}

// Open verifies a sealed value read under key and returns its payload, which
// aliases value. It returns an error wrapping ErrCorrupt on any mismatch.
func Open(key, value []byte) ([]byte, error) {
	if len(value) < HeaderSize {
		return nil, fmt.Errorf("%w: key %q: %d bytes, shorter than the checksum", ErrCorrupt, key, len(value))
	}
	want := binary.BigEndian.Uint32(value[:HeaderSize])
	payload := value[HeaderSize:]
	if got := Sum(key, payload); got != want {
		return nil, fmt.Errorf("%w: key %q: checksum %08x, stored %08x", ErrCorrupt, key, got, want)
	}
	return payload, nil
}
