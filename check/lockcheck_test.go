package check

import (
	"strings"
	"testing"
)

func TestCheckLockHistory(t *testing.T) {
	// Times are the unfenced revisions scaled to milliseconds: a holder
	// believes it holds the lock from its enter to its exit.
	applied := func(c string, tok, rev, prev, enter, exit int64) lockHold {
		return lockHold{Client: c, Token: tok, Fence: fenceApplied, FenceRev: rev, FencePrev: prev, Enter: enter, Exit: exit,
			Acquired: enter * 1e6, Released: exit * 1e6}
	}
	refused := func(c string, tok, enter, exit int64) lockHold {
		return lockHold{Client: c, Token: tok, Fence: fenceRefused, Enter: enter, Exit: exit, Acquired: enter * 1e6, Released: exit * 1e6}
	}
	tests := []struct {
		name      string
		holds     []lockHold
		final     int64
		anomalies []string // substrings, one per expected anomaly
		overlaps  int
	}{
		{name: "empty", holds: nil},
		{name: "sequential holders in token order",
			holds: []lockHold{applied("a", 10, 12, 0, 11, 13), applied("b", 15, 17, 10, 16, 18), applied("c", 20, 22, 15, 21, 23)},
			final: 20},
		{name: "unknown outcomes and refusals are not anomalies",
			holds: []lockHold{applied("a", 10, 12, 0, 11, 13), {Client: "b", Token: 15, Acquired: 14e6, Released: 15e6}, applied("c", 20, 22, 15, 21, 0)},
			final: 20},
		{name: "stale holder fenced out, unfenced overlap reported",
			// a was paused past its lease: b got the lock and wrote; a's
			// fenced write was refused, its unfenced exit landed inside b's
			// section.
			holds: []lockHold{refused("a", 10, 11, 19), applied("b", 15, 17, 0, 16, 18)},
			final: 15, overlaps: 1},
		{name: "fenced writes out of token order",
			holds:     []lockHold{applied("a", 10, 18, 15, 11, 19), applied("b", 15, 17, 0, 16, 20)},
			final:     10,
			anomalies: []string{"replaced token 15", "took effect after b's (token 15)", "ends with token 10"},
			overlaps:  1},
		{name: "older token replaced a newer one the client never heard of",
			holds:     []lockHold{applied("a", 10, 18, 15, 0, 0), {Client: "b", Token: 15, Acquired: 1, Released: 2}},
			final:     15,
			anomalies: []string{"replaced token 15"}},
		{name: "same token granted twice",
			holds:     []lockHold{applied("a", 10, 12, 0, 0, 0), refused("b", 10, 0, 0)},
			final:     10,
			anomalies: []string{"both granted the lock with token 10"}, overlaps: 1},
		{name: "two fenced writes at one revision",
			holds:     []lockHold{applied("a", 10, 12, 0, 0, 0), applied("b", 11, 12, 0, 0, 0)},
			final:     11,
			anomalies: []string{"both at revision 12"}, overlaps: 1},
		{name: "final value below an acknowledged token",
			holds:     []lockHold{applied("a", 10, 12, 0, 0, 0)},
			final:     0,
			anomalies: []string{"ends with token 0"}},
		{name: "three overlapping sections",
			holds: []lockHold{refused("a", 10, 11, 30), refused("b", 15, 16, 25), applied("c", 20, 21, 0, 22, 23)},
			final: 20, overlaps: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lc := checkLockHistory(tc.holds, tc.final)
			if len(lc.anomalies) != len(tc.anomalies) {
				t.Fatalf("anomalies %q, want %d matching %q", lc.anomalies, len(tc.anomalies), tc.anomalies)
			}
			for i, want := range tc.anomalies {
				if !strings.Contains(lc.anomalies[i], want) {
					t.Errorf("anomaly %d = %q, want it to mention %q", i, lc.anomalies[i], want)
				}
			}
			if len(lc.overlaps) != tc.overlaps {
				t.Errorf("overlaps %q, want %d", lc.overlaps, tc.overlaps)
			}
		})
	}
}
