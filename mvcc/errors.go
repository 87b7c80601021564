package mvcc

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/synod-db/synod/record"
)

// Request-level errors. They are deterministic: every member applying the same
// entry returns the same one, and the entry still counts as applied. The API
// edge maps each to etcd's gRPC status (etcdapi/errors.go).
var (
	// ErrCompacted: the requested revision is below the compaction revision.
	ErrCompacted = errors.New("mvcc: required revision has been compacted")
	// ErrFutureRev: the requested revision is above the current revision.
	ErrFutureRev = errors.New("mvcc: required revision is a future revision")
	// ErrKeyNotFound: ignore_value or ignore_lease on a key that does not exist.
	ErrKeyNotFound = errors.New("mvcc: key not found")
	// ErrLeaseNotFound: a put names a lease that does not exist.
	ErrLeaseNotFound = errors.New("mvcc: requested lease not found")
)

// ErrCorrupt is record.ErrCorrupt: stored data failed its checksum. It is
// never a request-level error; the member must stop serving.
var ErrCorrupt = record.ErrCorrupt

// storageErr marks an error Pebble reports for damaged files (a block
// that fails its checksum, a malformed table) as record.ErrCorrupt too, so
// that it reaches clients as etcd's "corrupt cluster" and stops the member
// like a record that fails its own checksum. Other errors pass unchanged.
// Pebble v2 joins its report (the file, its key bounds) to the error it
// returns, as a second line reading "<corruption detail carrier>"; the
// report is logged by the member's DataCorruption event already, so only
// the error itself is kept.
func storageErr(err error) error {
	if err != nil && pebble.IsCorruptionError(err) && !errors.Is(err, record.ErrCorrupt) {
		if info := pebble.ExtractDataCorruptionInfo(err); info != nil {
			err = info.Details
		}
		return fmt.Errorf("%w: %w", record.ErrCorrupt, err)
	}
	return err
}
