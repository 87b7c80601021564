package mvcc

import (
	"errors"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/synod-db/synod/record"
)

// TestStorageErr: Pebble's corruption errors count as record.ErrCorrupt
// (and keep their own text); other errors pass unchanged.
func TestStorageErr(t *testing.T) {
	corrupt := fmt.Errorf("read block: %w", pebble.ErrCorruption)
	if err := storageErr(corrupt); !errors.Is(err, record.ErrCorrupt) || !errors.Is(err, pebble.ErrCorruption) {
		t.Fatalf("storageErr(%v) = %v", corrupt, err)
	}
	other := errors.New("disk on fire")
	if err := storageErr(other); err != other {
		t.Fatalf("storageErr(%v) = %v", other, err)
	}
	if storageErr(nil) != nil {
		t.Fatal("storageErr(nil) != nil")
	}
}
