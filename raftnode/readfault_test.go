package raftnode

import (
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/synod-db/synod/record"
	"github.com/synod-db/synod/storage"
)

// raft panics with the storage's error when a log read fails (raft's
// log.go: panic(err)). A read the disk failed (storage.ErrRead) or a
// corrupt record becomes the loop's fatal error, so the member stops and
// says why; any other panic is a bug and goes on.
func TestStoragePanicIsFatal(t *testing.T) {
	for _, err := range []error{
		fmt.Errorf("%w: pebble: read: input/output error", storage.ErrRead),
		fmt.Errorf("%w: entry 7", record.ErrCorrupt),
	} {
		n := &Node{c: &Core{log: slog.New(slog.DiscardHandler)}}
		func() {
			defer n.recoverCorruption()
			panic(err)
		}()
		if got := n.Err(); got != err {
			t.Errorf("after raft panicked with %v: Err() = %v", err, got)
		}
	}
	n := &Node{c: &Core{log: slog.New(slog.DiscardHandler)}}
	bug := errors.New("raft: invariant broken")
	defer func() {
		if p := recover(); p != bug {
			t.Fatalf("a panic that is not a storage failure was recovered as %v", p)
		}
	}()
	defer n.recoverCorruption()
	panic(bug)
}
