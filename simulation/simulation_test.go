package simulation

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"testing/cryptotest"
	"time"
)

var (
	flagSeed  = flag.Uint64("sim.seed", 0, "run only this seed (with its trace under -v)")
	flagSeeds = flag.Int("sim.seeds", 500, "number of seeds TestSimulation runs")
	flagStart = flag.Uint64("sim.start", 1, "first seed TestSimulation runs")
	flagMax   = flag.Int("sim.maxfail", 3, "stop the sweep after this many failed seeds (0: never)")
)

// runSeed makes crypto/rand (raft's election timeouts) deterministic from
// the seed, then runs it.
func runSeed(t *testing.T, seed uint64, cfg Config) Result {
	cryptotest.SetGlobalRandom(t, seed)
	cfg.Seed = seed
	return Run(cfg)
}

// buildTags are the unsafe build tags this test binary was built with
// (appended by tags_*_test.go), so a replay command rebuilds the same code.
var buildTags []string

// replayCommand is how to replay one seed.
func replayCommand(seed uint64) string {
	tags := ""
	if len(buildTags) > 0 {
		tags = " -tags " + strings.Join(buildTags, ",")
	}
	return fmt.Sprintf("go test%s ./simulation -run 'TestSimulation$' -sim.seed=%d -v", tags, seed)
}

// TestSimulation runs -sim.seeds seeds from -sim.start (or only -sim.seed)
// and fails with the seed and its replay command on the first anomaly.
func TestSimulation(t *testing.T) {
	if *flagSeed != 0 {
		var cfg Config
		if testing.Verbose() {
			cfg.Trace = os.Stdout
		}
		res := runSeed(t, *flagSeed, cfg)
		t.Logf("seed %d: %s, trace digest %s", res.Seed, res.Summary, res.Digest)
		report(t, res)
		return
	}
	start, begin := *flagStart, time.Now()
	failed := 0
	for seed := start; seed < start+uint64(*flagSeeds); seed++ {
		res := runSeed(t, seed, Config{})
		if res.Failed() {
			report(t, res)
			if failed++; *flagMax > 0 && failed >= *flagMax {
				break
			}
		}
	}
	t.Logf("%d seeds from %d in %s, %d failed", *flagSeeds, start, time.Since(begin).Round(time.Millisecond), failed)
}

// report fails t with a run's anomalies, its trace tail and how to replay it.
func report(t *testing.T, res Result) {
	t.Helper()
	if !res.Failed() {
		return
	}
	t.Errorf("seed %d FAILED (%s):\n  %s\nlast trace lines:\n%s\nreplay: %s",
		res.Seed, res.Summary, strings.Join(res.Anomalies, "\n  "), strings.Join(res.Tail, ""), replayCommand(res.Seed))
}
