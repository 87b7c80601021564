package mvcc

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/cockroachdb/pebble/v2"
)

// A backup in synod's earlier format is what `etcdctl snapshot save` wrote
// from synod's Maintenance.Snapshot before it sent etcd's format
// (etcdformat.go): a snapshot stream (Snapshot.WriteTo), zero padding up to
// a multiple of BackupAlign bytes, then the sha256 of everything before it.
// etcd's client accepts a file only if its size % 512 == 32. Such backups
// still restore.
const BackupAlign = 512

// ErrBackupHash is wrapped by the errors of a backup whose sha256 trailer is
// missing or does not match its content.
var ErrBackupHash = errors.New("mvcc: snapshot file integrity check failed")

// ErrNotEmpty is returned by ImportBackup into a database that already holds
// state.
var ErrNotEmpty = errors.New("mvcc: import into a database that is not empty")

// BackupPadding is the number of zero bytes that follow a snapshot stream
// of n bytes in a backup.
func BackupPadding(n int64) int64 { return (BackupAlign - n%BackupAlign) % BackupAlign }

// VerifyBackup checks a backup file end to end: the sha256 trailer against
// the content (unless skipHash; then a file without the trailer, such as a
// raft snapshot file copied from a data directory, is accepted too), and the
// framing and checksum of the snapshot stream in it. It returns the length of
// the content before the sha256. Errors wrap ErrBackupHash or
// record.ErrCorrupt and say what is wrong.
func VerifyBackup(path string, skipHash bool) (content int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("mvcc: open snapshot file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("mvcc: stat snapshot file: %w", err)
	}
	size := st.Size()
	hasHash := size%BackupAlign == sha256.Size
	switch {
	case hasHash:
		content = size - sha256.Size
	case skipHash:
		content = size
	default:
		return 0, fmt.Errorf("%w: %s: no sha256 trailer (%d bytes, want size %% %d == %d)",
			ErrBackupHash, path, size, BackupAlign, sha256.Size)
	}
	if hasHash && !skipHash {
		if err := checkBackupHash(f, content); err != nil {
			return 0, fmt.Errorf("%s: %w", path, err)
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("mvcc: read snapshot file: %w", err)
	}
	if _, err := readBackupStream(f, content, nil); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return content, nil
}

// checkBackupHash compares the sha256 of the first content bytes of f with
// the 32 bytes that follow them.
func checkBackupHash(f *os.File, content int64) error {
	h := sha256.New()
	if _, err := io.CopyN(h, f, content); err != nil {
		return fmt.Errorf("mvcc: read snapshot file: %w", err)
	}
	want := make([]byte, sha256.Size)
	if _, err := io.ReadFull(f, want); err != nil {
		return fmt.Errorf("mvcc: read snapshot file: %w", err)
	}
	if got := h.Sum(nil); !bytes.Equal(got, want) {
		return fmt.Errorf("%w: sha256 %x, file says %x", ErrBackupHash, got, want)
	}
	return nil
}

// readBackupStream parses a (possibly padded) snapshot stream of content bytes.
func readBackupStream(r io.Reader, content int64, fn func(k, v []byte) error) (snapTrailer, error) {
	sr := newStreamReader(r, content)
	sr.padded = true
	return readStreamFrom(sr, fn)
}

// ImportOptions tune ImportBackup.
type ImportOptions struct {
	// SkipHashCheck accepts a file without (or with a wrong) sha256 trailer.
	SkipHashCheck bool
	// BumpRevision is added to the restored current revision (etcdutl's
	// --bump-revision), so that revisions clients saw before never repeat.
	BumpRevision int64
	// MarkCompacted makes the restored (bumped) revision the compaction
	// revision (etcdutl's --mark-compacted): watchers resuming from an
	// older revision learn they must re-read.
	MarkCompacted bool
	// Keep, if set, is asked about every key >= 0x20 (membership, alarms,
	// leases); a key it rejects is not imported.
	Keep func(key []byte) bool
	// Applied and AppliedTerm, if Applied > 0, are recorded as the applied
	// raft index and term: the new cluster's raft log starts from a
	// snapshot at that index (as etcdutl's restore starts etcd's).
	Applied, AppliedTerm uint64
}

// ImportResult describes an imported state.
type ImportResult struct {
	// Rev and CompactRev are the current and compaction revisions after import.
	Rev, CompactRev int64
	// Keys is the number of stored records imported.
	Keys int
}

// ImportBackup writes the state in the backup file at path into db, which
// must hold no state yet (no key >= 0x10), to bootstrap a new cluster: the
// same keys, versions and revisions, but not the old applied index (the new
// cluster's raft log starts from scratch, or from opts.Applied). The file is verified first (VerifyBackup);
// nothing is written if it is bad. The last batch is synced.
func ImportBackup(db *pebble.DB, path string, opts ImportOptions) (ImportResult, error) {
	if opts.BumpRevision < 0 {
		return ImportResult{}, fmt.Errorf("mvcc: import: negative revision bump %d", opts.BumpRevision)
	}
	content, err := VerifyBackup(path, opts.SkipHashCheck)
	if err != nil {
		return ImportResult{}, err
	}
	if err := checkEmpty(db); err != nil {
		return ImportResult{}, err
	}
	f, err := os.Open(path)
	if err != nil {
		return ImportResult{}, fmt.Errorf("mvcc: open snapshot file: %w", err)
	}
	defer f.Close()
	im := &importer{db: db, b: db.NewBatch(), opts: opts, res: ImportResult{Rev: 1, CompactRev: -1}}
	defer func() { _ = im.b.Close() }()
	if _, err := readBackupStream(f, content, im.record); err != nil {
		return ImportResult{}, err
	}
	return im.finish()
}

// checkEmpty fails with ErrNotEmpty if db holds a key >= 0x10.
func checkEmpty(db *pebble.DB) error {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: stateStart})
	if err != nil {
		return fmt.Errorf("mvcc: import iterator: %w", err)
	}
	if it.First() {
		err = fmt.Errorf("%w: key %q", ErrNotEmpty, it.Key())
	}
	return closeIter(it, err)
}

// importer writes the records of a verified stream in bounded batches.
type importer struct {
	db   *pebble.DB
	b    *pebble.Batch
	opts ImportOptions
	res  ImportResult
}

func (im *importer) record(k, v []byte) error {
	switch {
	case bytes.Equal(k, metaApplied), bytes.Equal(k, metaRestore):
		return nil // the new cluster has applied nothing yet
	case bytes.Equal(k, metaRev) || bytes.Equal(k, metaCompact):
		p, err := openMeta(k, v, 8)
		if err != nil {
			return err
		}
		if bytes.Equal(k, metaRev) {
			im.res.Rev = int64(binary.BigEndian.Uint64(p))
		} else {
			im.res.CompactRev = int64(binary.BigEndian.Uint64(p))
		}
		return nil // written by finish
	case k[0] >= prefixOthers && im.opts.Keep != nil && !im.opts.Keep(k):
		return nil
	}
	if err := im.b.Set(k, v, nil); err != nil {
		return err
	}
	im.res.Keys++
	return im.flush()
}

// bulkBatchBytes bounds one batch of a bulk write that need not be atomic:
// an import, a rebuild of the lease index.
const bulkBatchBytes = 4 << 20

// flush commits the batch once it holds bulkBatchBytes.
func (im *importer) flush() error {
	if im.b.Len() < bulkBatchBytes {
		return nil
	}
	if err := im.b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("mvcc: import batch: %w", err)
	}
	im.b.Reset()
	return nil
}

// finish writes the (bumped) revisions and commits the last batch, synced.
func (im *importer) finish() (ImportResult, error) {
	im.res.Rev += im.opts.BumpRevision
	if im.opts.MarkCompacted {
		im.res.CompactRev = im.res.Rev
	}
	if err := setMeta(im.b, metaRev, be64(uint64(im.res.Rev))); err != nil {
		return ImportResult{}, err
	}
	if im.opts.Applied > 0 {
		if err := setMeta(im.b, metaApplied, appliedBytes(im.opts.Applied, im.opts.AppliedTerm)); err != nil {
			return ImportResult{}, err
		}
	}
	if im.res.CompactRev >= 0 {
		if err := setMeta(im.b, metaCompact, be64(uint64(im.res.CompactRev))); err != nil {
			return ImportResult{}, err
		}
	}
	if err := im.b.Commit(pebble.Sync); err != nil {
		return ImportResult{}, fmt.Errorf("mvcc: import final batch: %w", err)
	}
	return im.res, nil
}

// IsSnapshotStream reports whether head, the first bytes of a file, starts
// a snapshot stream (synod's format, as opposed to etcd's bbolt database).
func IsSnapshotStream(head []byte) bool { return bytes.HasPrefix(head, []byte(snapMagic)) }
