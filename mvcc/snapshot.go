package mvcc

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// Snapshot stream constants (format in doc.go).
const (
	snapMagic      = "SYNODSNP"
	snapVersion    = 1
	frameRecord    = 0x01
	frameTrailer   = 0x02
	snapHeaderLen  = len(snapMagic) + 1
	snapTrailerLen = 1 + 8 + 8 + 8 // frame byte, index, term, count; then the crc
)

// Snapshot is a point-in-time copy of the state keyspace (every key >= 0x10)
// and the applied index/term it corresponds to.
type Snapshot struct {
	s           *Store
	snap        *pebble.Snapshot
	index, term uint64
}

// NewSnapshot captures, at this instant, the state keyspace via a pebble
// snapshot plus the applied index/term recorded in it (so the two always
// match, even when a client's backup takes it concurrently with Apply). The
// raft loop calls it serially with Apply. WriteTo may then run in another
// goroutine. The Snapshot must be closed before the DB is.
func (s *Store) NewSnapshot() *Snapshot {
	s.mu.RLock()
	defer s.mu.RUnlock()
	snap := s.newSnapshot()
	a := s.applied.Load()
	sn := &Snapshot{s: s, snap: snap, index: a.index, term: a.term}
	if p, err := readMeta(snap, metaApplied, 16); err == nil && p != nil {
		sn.index, sn.term = binary.BigEndian.Uint64(p), binary.BigEndian.Uint64(p[8:])
	}
	return sn
}

// Index returns the applied index the snapshot was taken at.
func (sn *Snapshot) Index() uint64 { return sn.index }

// Term returns the term of the entry at Index.
func (sn *Snapshot) Term() uint64 { return sn.term }

// Close releases the pebble snapshot.
func (sn *Snapshot) Close() error { return sn.s.closeSnapshot(sn.snap) }

// WriteTo writes the snapshot stream to w and returns the bytes written.
// A w that buffers, as bufio.Writer and bytes.Buffer do (it has
// AvailableBuffer: records are appended to its free space, then written
// from there), is written to directly; any other through a bufio.Writer.
func (sn *Snapshot) WriteTo(w io.Writer) (n int64, err error) {
	it, err := sn.snap.NewIter(&pebble.IterOptions{LowerBound: stateStart})
	if err != nil {
		return 0, fmt.Errorf("mvcc: snapshot iterator: %w", err)
	}
	defer func() { err = closeIter(it, err) }()
	sw := newStreamWriter(w)
	sw.write(append([]byte(snapMagic), snapVersion))
	var count uint64
	for valid := it.First(); valid && sw.err == nil; valid = it.Next() {
		if bytes.Equal(it.Key(), metaRestore) {
			continue
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return sw.n, fmt.Errorf("mvcc: snapshot read: %w", err)
		}
		sw.record(it.Key(), v)
		count++
	}
	t := append([]byte{frameTrailer}, be64(sn.index)...)
	t = binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(t, sn.term), count)
	sw.write(t)
	sw.writeRaw(binary.BigEndian.AppendUint32(nil, sw.crc.Sum32()))
	sw.flush()
	return sw.n, sw.err
}

// streamWriter writes frames, tracking the byte count, crc and first error.
type streamWriter struct {
	w   bufferedWriter
	crc hash.Hash32
	n   int64
	err error
	hdr [1 + 2*binary.MaxVarintLen64]byte // a record's lengths, when it is written in pieces
}

// bufferedWriter is a writer with a buffer of its own that a frame can be
// built in (bufio.Writer, bytes.Buffer): AvailableBuffer returns its free
// space, empty, to append to and pass to Write right after.
type bufferedWriter interface {
	io.Writer
	AvailableBuffer() []byte
}

// newStreamWriter writes to w, through a bufio.Writer unless w buffers.
func newStreamWriter(w io.Writer) *streamWriter {
	bw, ok := w.(bufferedWriter)
	if !ok {
		bw = bufio.NewWriterSize(w, 1<<16)
	}
	return &streamWriter{w: bw, crc: crc32.New(castagnoli)}
}

// flush flushes the writer if it needs it (a bufio.Writer).
func (sw *streamWriter) flush() {
	if f, ok := sw.w.(interface{ Flush() error }); ok && sw.err == nil {
		sw.err = f.Flush()
	}
}

func (sw *streamWriter) write(b []byte) {
	sw.crc.Write(b)
	sw.writeRaw(b)
}

func (sw *streamWriter) writeRaw(b []byte) {
	if sw.err != nil {
		return
	}
	n, err := sw.w.Write(b)
	sw.n += int64(n)
	sw.err = err
}

// record writes one record frame: built in the writer's free space and
// hashed in one piece when it fits there, else in pieces.
func (sw *streamWriter) record(k, v []byte) {
	if b := sw.w.AvailableBuffer(); cap(b) >= len(sw.hdr)+len(k)+len(v) {
		b = binary.AppendUvarint(append(b, frameRecord), uint64(len(k)))
		b = binary.AppendUvarint(append(b, k...), uint64(len(v)))
		sw.write(append(b, v...))
		return
	}
	hdr := binary.AppendUvarint(append(sw.hdr[:0], frameRecord), uint64(len(k)))
	sw.write(hdr)
	sw.write(k)
	sw.write(binary.AppendUvarint(sw.hdr[:0], uint64(len(v))))
	sw.write(v)
}

// snapTrailer is what a verified stream ends with.
type snapTrailer struct{ index, term uint64 }

// streamReader parses a snapshot stream of known size, checking framing as
// it goes; the crc is checked at the trailer.
type streamReader struct {
	r       *bufio.Reader
	left    int64 // bytes not yet read
	crc     hash.Hash32
	lastKey []byte
	key     []byte
	val     []byte
	padded  bool // zero padding to a BackupAlign boundary may follow the trailer
	// open is whether the size is unknown (left is math.MaxInt64): a
	// stream being received, which must end right after its trailer.
	open bool
}

// readStream parses a whole stream of size bytes, calling fn (if not nil) for
// every (key, value) record; slices are reused after fn returns. Any framing
// or checksum problem is a wrapped record.ErrCorrupt. Records handed to fn
// before the trailer are not yet checksum-verified.
func readStream(r io.Reader, size int64, fn func(k, v []byte) error) (snapTrailer, error) {
	return readStreamFrom(newStreamReader(r, size), fn)
}

// readStreamFrom is readStream on a prepared reader.
func readStreamFrom(sr *streamReader, fn func(k, v []byte) error) (snapTrailer, error) {
	hdr, err := sr.read(snapHeaderLen)
	if err != nil {
		return snapTrailer{}, err
	}
	if string(hdr[:len(snapMagic)]) != snapMagic || hdr[len(snapMagic)] != snapVersion {
		return snapTrailer{}, corruptf("snapshot: bad header %q", hdr)
	}
	for count := uint64(0); ; count++ {
		if ok, err := sr.peekRecord(fn); ok {
			if err != nil {
				return snapTrailer{}, err
			}
			continue
		}
		frame, err := sr.read(1)
		if err != nil {
			return snapTrailer{}, err
		}
		switch frame[0] {
		case frameRecord:
			if err := sr.record(fn); err != nil {
				return snapTrailer{}, err
			}
		case frameTrailer:
			return sr.trailer(count)
		default:
			return snapTrailer{}, corruptf("snapshot: unknown frame 0x%02x", frame[0])
		}
	}
}

// record reads one (key, value) frame body and validates the key.
func (sr *streamReader) record(fn func(k, v []byte) error) error {
	var err error
	if sr.key, err = sr.readBytes(sr.key); err != nil {
		return err
	}
	if sr.val, err = sr.readBytes(sr.val); err != nil {
		return err
	}
	if err := checkStreamKey(sr.key, sr.val, sr.lastKey); err != nil {
		return err
	}
	sr.lastKey = append(sr.lastKey[:0], sr.key...)
	if fn == nil {
		return nil
	}
	return fn(sr.key, sr.val)
}

// checkStreamKey validates a record: keys strictly increasing, all in the
// state keyspace, never the restore marker; meta values must open cleanly
// so a restored store always loads.
func checkStreamKey(k, v, last []byte) error {
	switch {
	case len(k) == 0 || k[0] < prefixVersion:
		return corruptf("snapshot: key %q outside the state keyspace", k)
	case last != nil && bytes.Compare(k, last) <= 0:
		return corruptf("snapshot: key %q out of order", k)
	case bytes.Equal(k, metaRestore):
		return corruptf("snapshot: holds a restore marker")
	}
	return checkMetaRecord(k, v)
}

// checkMetaRecord checks that a known meta key has a well-formed value.
func checkMetaRecord(k, v []byte) error {
	size := 0
	switch {
	case bytes.Equal(k, metaApplied):
		size = 16
	case bytes.Equal(k, metaRev), bytes.Equal(k, metaCompact), bytes.Equal(k, metaFinished):
		size = 8
	case bytes.Equal(k, metaProgress):
	default:
		return nil
	}
	_, err := openMeta(k, v, size)
	return err
}

// trailer reads index, term, count and the crc, and checks the stream ends.
func (sr *streamReader) trailer(count uint64) (snapTrailer, error) {
	t, err := sr.read(snapTrailerLen - 1)
	if err != nil {
		return snapTrailer{}, err
	}
	tr := snapTrailer{index: binary.BigEndian.Uint64(t), term: binary.BigEndian.Uint64(t[8:])}
	if n := binary.BigEndian.Uint64(t[16:]); n != count {
		return snapTrailer{}, corruptf("snapshot: trailer says %d records, read %d", n, count)
	}
	want := sr.crc.Sum32()
	c, err := sr.readRaw(4)
	if err != nil {
		return snapTrailer{}, err
	}
	if got := binary.BigEndian.Uint32(c); got != want {
		return snapTrailer{}, corruptf("snapshot: checksum %08x, computed %08x", got, want)
	}
	if sr.open {
		return tr, sr.atEnd()
	}
	if sr.left != 0 && !sr.padded {
		return snapTrailer{}, corruptf("snapshot: %d bytes after the trailer", sr.left)
	}
	if sr.left >= BackupAlign {
		return snapTrailer{}, corruptf("snapshot: %d bytes after the trailer", sr.left)
	}
	pad, err := sr.readRaw(int(sr.left))
	if err != nil {
		return snapTrailer{}, err
	}
	for _, b := range pad {
		if b != 0 {
			return snapTrailer{}, corruptf("snapshot: padding after the trailer is not zero")
		}
	}
	return tr, nil
}

// readBytes reads a uvarint length then that many bytes into buf.
func (sr *streamReader) readBytes(buf []byte) ([]byte, error) {
	n, err := binary.ReadUvarint(byteReader{sr})
	if err != nil {
		return nil, corruptf("snapshot: bad length: %v", err)
	}
	if n > uint64(sr.left) {
		return nil, corruptf("snapshot: length %d exceeds the %d bytes left", n, sr.left)
	}
	if n > maxEagerAlloc && sr.open {
		return sr.readLarge(buf, n)
	}
	if uint64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	return buf, sr.fill(buf, true)
}

// maxEagerAlloc is the largest length of a received stream's field that
// is allocated before its bytes arrive.
const maxEagerAlloc = 1 << 20

// readLarge reads n bytes of a stream of unknown size into buf in steps of
// maxEagerAlloc, so that a corrupt length costs no more memory than the
// bytes that actually arrive.
func (sr *streamReader) readLarge(buf []byte, n uint64) ([]byte, error) {
	buf = buf[:0]
	for rest := n; rest > 0; {
		k := min(rest, maxEagerAlloc)
		buf = slices.Grow(buf, int(k))
		chunk := buf[len(buf) : len(buf)+int(k)]
		if err := sr.fill(chunk, true); err != nil {
			return nil, err
		}
		buf, rest = buf[:len(buf)+int(k)], rest-k
	}
	return buf, nil
}

// atEnd checks that a received stream ends right after its trailer.
func (sr *streamReader) atEnd() error {
	_, err := sr.r.ReadByte()
	switch {
	case errors.Is(err, io.EOF):
		return nil
	case err == nil:
		return corruptf("snapshot: bytes after the trailer")
	default:
		return fmt.Errorf("mvcc: read snapshot: %w", err)
	}
}

// read returns the next n bytes (n small), hashed.
func (sr *streamReader) read(n int) ([]byte, error) {
	b := make([]byte, n)
	return b, sr.fill(b, true)
}

// readRaw returns the next n bytes without hashing them.
func (sr *streamReader) readRaw(n int) ([]byte, error) {
	b := make([]byte, n)
	return b, sr.fill(b, false)
}

func (sr *streamReader) fill(b []byte, hashed bool) error {
	if int64(len(b)) > sr.left {
		return corruptf("snapshot: truncated")
	}
	if _, err := io.ReadFull(sr.r, b); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return corruptf("snapshot: truncated")
		}
		return fmt.Errorf("mvcc: read snapshot: %w", err)
	}
	sr.left -= int64(len(b))
	if hashed {
		sr.crc.Write(b)
	}
	return nil
}

// byteReader adapts streamReader to io.ByteReader for uvarints.
type byteReader struct{ sr *streamReader }

func (br byteReader) ReadByte() (byte, error) {
	var b [1]byte
	if err := br.sr.fill(b[:], true); err != nil {
		return 0, err
	}
	return b[0], nil
}
