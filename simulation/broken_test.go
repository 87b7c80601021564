package simulation

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/synod-db/synod/internal/testcache"
)

// TestBrokenBuildsAreCaught builds the simulation with a tag that
// deliberately breaks safety and runs its seed sweep: the sweep must fail,
// naming a seed and the command that replays it under the same tag. A
// checker that cannot fail is worthless.
func TestBrokenBuildsAreCaught(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the simulation under unsafe tags")
	}
	if err := testcache.DependOnModuleSources(".."); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		tag  string
		what string // the anomaly the sweep must report
	}{
		// The raft log acknowledges entries before they are durable; a
		// crash loses them (the restart refuses a state, synced on its
		// own, found past the end of the log, raft panics on a log that
		// lost committed entries, or the history or state hashes show
		// the loss).
		{"synod_unsafe_nosync", `the raft log has lost entries this member acknowledged|fatal: panic: .*lost|past last index|not linearizable|lost on member|state hash mismatch`},
		// The raft log is truncated behind a snapshot before the state
		// (a database of its own) is synced: a crash leaves the state
		// behind the start of the log.
		{"synod_unsafe_nostatesync", `log starts at snapshot \d+ but the state is at \d+|state hash mismatch|lost on member|not linearizable`},
		// Entries raft replays after a restart are applied a second time.
		{"synod_unsafe_reapply", `state hash mismatch|not linearizable|lost on member`},
		// The state machine skips the NOSPACE alarm's gate: puts are
		// applied while the alarm is raised.
		{"synod_unsafe_skipgate", `acknowledged at \[\d+,\d+\] while a NOSPACE alarm was raised`},
		// The state machine hands a run's last two revisions to the
		// watchers in the wrong order.
		{"synod_unsafe_watchorder", `watch: revision \d+ delivered after revision \d+`},
	}
	for _, tc := range tests {
		t.Run(tc.tag, func(t *testing.T) {
			cmd := exec.Command("go", "test", "-count=1", "-tags", tc.tag, "./simulation",
				"-run", "TestSimulation$", "-sim.seeds=30")
			cmd.Dir = ".."
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the simulation passed 30 seeds built with -tags %s; it must catch it\n%s", tc.tag, out)
			}
			text := string(out)
			if !regexp.MustCompile(tc.what).MatchString(text) {
				t.Fatalf("no anomaly matching %q in the output:\n%s", tc.what, text)
			}
			replay := regexp.MustCompile(`replay: go test -tags ` + tc.tag + ` \./simulation -run 'TestSimulation\$' -sim\.seed=(\d+) -v`)
			m := replay.FindStringSubmatch(text)
			if m == nil {
				t.Fatalf("no replay command with the seed in the output:\n%s", text)
			}
			t.Logf("caught: seed %s, %s", m[1], firstLine(text, "FAILED"))
		})
	}
}

// firstLine returns the first line of text containing s.
func firstLine(text, s string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}
