package etcdsnap

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
)

var (
	// ErrIntegrity is wrapped by the errors of a file whose sha256 trailer
	// is missing (and the check is not skipped) or does not match.
	ErrIntegrity = errors.New("snapshot file integrity check failed")
	// ErrCorrupt is wrapped by the errors of a file whose database or
	// records cannot be read.
	ErrCorrupt = errors.New("snapshot file is corrupt")
)

// HashSize is the size of the trailer: the sha256 of the database before it.
const HashSize = sha256.Size

// align is etcd's rule for a trailer: a file carries one iff its size %
// align == HashSize (a bbolt file is a whole number of pages).
const align = 512

// verify checks the sha256 trailer of the file at path as etcdutl does and
// returns the size of the database before it and its sha256 (computed even
// when the check is skipped).
func verify(path string, skipHash bool) (size int64, sum []byte, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, nil, err
	}
	size = st.Size()
	hasHash := size%align == HashSize
	if hasHash {
		size -= HashSize
	} else if !skipHash {
		return 0, nil, fmt.Errorf("%w: snapshot missing hash but --skip-hash-check=false", ErrIntegrity)
	}
	h := sha256.New()
	if _, err := io.CopyN(h, f, size); err != nil {
		return 0, nil, fmt.Errorf("read %s: %w", path, err)
	}
	sum = h.Sum(nil)
	if !hasHash || skipHash {
		return size, sum, nil
	}
	want := make([]byte, HashSize)
	if _, err := io.ReadFull(f, want); err != nil {
		return 0, nil, fmt.Errorf("read %s: %w", path, err)
	}
	if !bytes.Equal(want, sum) {
		return 0, nil, fmt.Errorf("%w: expected sha256 %v, got %v", ErrIntegrity, want, sum)
	}
	return size, sum, nil
}
