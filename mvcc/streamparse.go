package mvcc

import (
	"bufio"
	"encoding/binary"
	"hash/crc32"
	"io"
)

// maxPeekRecord bounds the records peekRecord parses in place: those that
// fit the reader's buffer (the 64 KiB every streamReader is made with),
// which is nearly every record. Longer ones go the copying way (record).
const maxPeekRecord = 1 << 16

// peekRecord parses the record frame at the reader's position straight
// from the bufio buffer, without copying it, when the whole frame fits
// there: it checks the key as record does, hashes the frame, hands key and
// value (aliasing the buffer, valid until fn returns) to fn and consumes the
// frame. It returns false, having consumed nothing, for anything else (a
// trailer, a record that does not fit, a short or malformed frame): the
// caller then reads the frame the copying way, which reports the error.
func (sr *streamReader) peekRecord(fn func(k, v []byte) error) (bool, error) {
	frame, ok := sr.peekFrame()
	if !ok {
		return false, nil
	}
	k, v := frame.key(), frame.val()
	if err := checkStreamKey(k, v, sr.lastKey); err != nil {
		return true, err
	}
	sr.crc.Write(frame.b)
	sr.lastKey = append(sr.lastKey[:0], k...)
	var err error
	if fn != nil {
		err = fn(k, v)
	}
	if _, derr := sr.r.Discard(len(frame.b)); derr != nil && err == nil {
		err = derr // cannot happen: the bytes are buffered
	}
	sr.left -= int64(len(frame.b))
	return true, err
}

// peekedFrame is a whole record frame in the reader's buffer: frame byte,
// key length, key, value length, value.
type peekedFrame struct {
	b          []byte
	kOff, kLen int
	vOff, vLen int
}

func (f peekedFrame) key() []byte { return f.b[f.kOff : f.kOff+f.kLen : f.kOff+f.kLen] }
func (f peekedFrame) val() []byte { return f.b[f.vOff : f.vOff+f.vLen : f.vOff+f.vLen] }

// peekFrame finds a whole record frame at the reader's position, reading
// more into the buffer if needed, without consuming anything.
func (sr *streamReader) peekFrame() (peekedFrame, bool) {
	var f peekedFrame
	head, _ := sr.peek(1 + binary.MaxVarintLen64)
	if len(head) < 2 || head[0] != frameRecord {
		return f, false
	}
	kLen, n := binary.Uvarint(head[1:])
	if n <= 0 || kLen > maxPeekRecord {
		return f, false
	}
	f.kOff, f.kLen = 1+n, int(kLen)
	mid, _ := sr.peek(f.kOff + f.kLen + binary.MaxVarintLen64)
	if len(mid) <= f.kOff+f.kLen {
		return f, false
	}
	vLen, n := binary.Uvarint(mid[f.kOff+f.kLen:])
	if n <= 0 || vLen > maxPeekRecord {
		return f, false
	}
	f.vOff, f.vLen = f.kOff+f.kLen+n, int(vLen)
	total := f.vOff + f.vLen
	if int64(total) > sr.left || total > sr.r.Size() {
		return f, false
	}
	b, err := sr.r.Peek(total)
	if err != nil {
		return f, false
	}
	f.b = b
	return f, true
}

// peek returns up to n buffered bytes (fewer at the end of the stream or
// of what the stream has left), filling the buffer if it holds fewer.
func (sr *streamReader) peek(n int) ([]byte, error) {
	n = int(min(int64(n), sr.left, int64(sr.r.Size())))
	return sr.r.Peek(n)
}

// newStreamReader reads a stream of left bytes (math.MaxInt64: unknown)
// from r. r's first error is kept: peek may meet it while filling the
// buffer, and bufio hands an error out only once, so the read that
// follows must meet it again.
func newStreamReader(r io.Reader, left int64) *streamReader {
	return &streamReader{r: bufio.NewReaderSize(&stickyReader{r: r}, 1<<16), left: left, crc: crc32.New(castagnoli)}
}

// stickyReader returns the first error of r from then on.
type stickyReader struct {
	r   io.Reader
	err error
}

func (s *stickyReader) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.r.Read(p)
	s.err = err
	return n, err
}
