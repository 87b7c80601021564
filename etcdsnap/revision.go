package etcdsnap

import (
	"encoding/binary"
	"fmt"
)

// revLen is the length of a revision key; a deletion's key has one more
// byte, 't'.
const revLen = 8 + 1 + 8

// Revision is the key of a record in etcd's key bucket.
type Revision struct {
	// Main is the revision of the change; Sub its index within it.
	Main, Sub int64
	// Tombstone marks a deletion.
	Tombstone bool
}

// ParseRevision decodes a key-bucket key, refusing any other shape with
// ErrCorrupt.
func ParseRevision(k []byte) (Revision, error) {
	if (len(k) != revLen && len(k) != revLen+1) || k[8] != '_' || (len(k) == revLen+1 && k[revLen] != 't') {
		return Revision{}, fmt.Errorf("%w: bad revision key %x", ErrCorrupt, k)
	}
	r := Revision{
		Main:      int64(binary.BigEndian.Uint64(k)),
		Sub:       int64(binary.BigEndian.Uint64(k[9:])),
		Tombstone: len(k) == revLen+1,
	}
	if r.Main < 0 || r.Sub < 0 {
		return Revision{}, fmt.Errorf("%w: negative revision in key %x", ErrCorrupt, k)
	}
	return r, nil
}

// Append appends the key-bucket key of r to dst.
func (r Revision) Append(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(r.Main))
	dst = append(dst, '_')
	dst = binary.BigEndian.AppendUint64(dst, uint64(r.Sub))
	if r.Tombstone {
		dst = append(dst, 't')
	}
	return dst
}

// Less orders revisions as etcd's key bucket does.
func (r Revision) Less(o Revision) bool {
	if r.Main != o.Main {
		return r.Main < o.Main
	}
	return r.Sub < o.Sub
}
