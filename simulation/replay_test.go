package simulation

import (
	"bytes"
	"strings"
	"testing"
)

// TestReplayIsDeterministic runs seeds twice and compares their traces: the
// same seed must produce the same trace byte for byte (every Ready, applied
// entry, fault, message dropped or duplicated, and client call), with the
// same digest, and different seeds different traces. The seeds are chosen
// to cover every kind of fault between them, which the test checks. Seed 22
// crashes a member just after the state's background compactor flushed its
// memtable: before the simulation waited for that goroutine after every step
// (Store.WaitCompactorIdle), it replayed differently about every other run.
func TestReplayIsDeterministic(t *testing.T) {
	seen := map[string]uint64{}
	var all strings.Builder
	for _, seed := range []uint64{21, 13, 4, 22} {
		var first, second bytes.Buffer
		a := runSeed(t, seed, Config{Trace: &first})
		b := runSeed(t, seed, Config{Trace: &second})
		if a.Digest != b.Digest || !bytes.Equal(first.Bytes(), second.Bytes()) {
			t.Fatalf("seed %d replayed differently: digest %s then %s (%d and %d trace bytes)\n%s",
				seed, a.Digest, b.Digest, first.Len(), second.Len(), replayCommand(seed))
		}
		if other, dup := seen[a.Digest]; dup {
			t.Fatalf("seeds %d and %d produced the same trace %s", other, seed, a.Digest)
		}
		seen[a.Digest] = seed
		report(t, a)
		all.Write(first.Bytes())
	}
	for _, kind := range []string{" crash ", " partition ", " restored ", " propose conf ", " propose compaction ", " NOSPACE alarm raised", " txn call ",
		" transfer leadership ", " drop ", " dup ", " done c", " propose expiry ", " revoke(", " pause ", " resume "} {
		if !strings.Contains(all.String(), kind) {
			t.Errorf("no %q in the replayed traces: the test does not cover it", strings.TrimSpace(kind))
		}
	}
}
