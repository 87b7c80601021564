package simulation

import "testing"

// TestReplayIsDeterministic runs seeds twice and compares their trace
// digests: the same seed must produce the same trace byte for byte (every
// message, Ready, apply, fault and client call), and different seeds
// different traces.
func TestReplayIsDeterministic(t *testing.T) {
	seen := map[string]uint64{}
	for _, seed := range []uint64{7, 42, 1234567} {
		a := runSeed(t, seed, Config{})
		b := runSeed(t, seed, Config{})
		if a.Digest != b.Digest {
			t.Fatalf("seed %d replayed differently: digest %s then %s\n%s", seed, a.Digest, b.Digest, replayCommand(seed))
		}
		if other, dup := seen[a.Digest]; dup {
			t.Fatalf("seeds %d and %d produced the same trace %s", other, seed, a.Digest)
		}
		seen[a.Digest] = seed
		report(t, a)
	}
}
