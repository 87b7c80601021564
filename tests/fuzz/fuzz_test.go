// Package fuzz runs every fuzz target of the module briefly with
// `go test -fuzz`, so that CI explores beyond the committed seed corpora
// (which plain `go test` already runs) on every change. Each target gets
// a fixed number of inputs (a few seconds); a failure prints the fuzzer's output, and the failing
// input is written under the package's testdata/fuzz, as `go test -fuzz`
// does, to be committed as a regression seed once fixed.
//
// Skipped with -short. The first run on a machine also compiles the
// module's dependencies with fuzzing instrumentation (minutes on two
// cores); later runs reuse the build cache.
package fuzz

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// targets are the module's fuzz targets: package, function, and how many
// inputs each is fed. Budgets are execution counts, not durations: with a
// duration, Go's fuzzer reports "context deadline exceeded" as a failure
// when the deadline falls while a worker is still minimising a new input,
// which on a loaded CI machine made the run flaky. Slow targets (a whole
// Pebble restore per input) get fewer inputs; each target runs a few
// seconds on two idle cores.
var targets = []struct {
	pkg, name string
	execs     int
}{
	{"./auth", "FuzzVerify", 2000},
	{"./consuldns", "FuzzAnswer", 2000},
	{"./etcdapi", "FuzzRequest", 500},
	{"./etcdsnap", "FuzzOpen", 500},
	{"./record", "FuzzOpen", 10000},
	{"./mvcc", "FuzzDecodeVersion", 2000},
	{"./mvcc", "FuzzSplitKeys", 5000},
	{"./mvcc", "FuzzSnapshotStream", 1000},
	{"./mvcc", "FuzzRestore", 100},
	{"./storage", "FuzzDecodeEntry", 2000},
	{"./storage", "FuzzOpen", 300},
	{"./transport", "FuzzDecodeMessage", 2000},
}

func TestFuzzTargets(t *testing.T) {
	if testing.Short() {
		t.Skip("fuzzing is skipped with -short")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	bins := t.TempDir()
	built := map[string]string{} // package → instrumented test binary
	for _, tg := range targets {
		t.Run(tg.name+"@"+filepath.Base(tg.pkg), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			bin, ok := built[tg.pkg]
			if !ok {
				// One instrumented binary per package (go test -fuzz
				// would link one per target).
				bin = filepath.Join(bins, filepath.Base(tg.pkg)+".test")
				cmd := exec.CommandContext(ctx, goBin, "test", "-c", "-fuzz=.", "-o", bin, tg.pkg)
				cmd.Dir = root
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("go test -c -fuzz %s: %v\n%s", tg.pkg, err, out)
				}
				built[tg.pkg] = bin
			}
			cmd := exec.CommandContext(ctx, bin, "-test.run=^$", "-test.fuzz=^"+tg.name+"$",
				"-test.fuzztime="+strconv.Itoa(tg.execs)+"x", "-test.fuzzminimizetime=100x", "-test.parallel=1",
				"-test.fuzzcachedir="+t.TempDir())
			cmd.Dir = filepath.Join(root, tg.pkg) // testdata/fuzz is read (and written) there
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s -test.fuzz=%s: %v\n%s", tg.pkg, tg.name, err, out)
			}
		})
	}
}

// TestTargetsListed fails when a fuzz target exists that the list above
// misses, so that a new target is run in CI too.
func TestTargetsListed(t *testing.T) {
	root := filepath.Join("..", "..")
	listed := map[string]bool{}
	for _, tg := range targets {
		listed[filepath.Clean(tg.pkg)+"."+tg.name] = true
	}
	out, err := exec.Command("grep", "-rhoE", "--include=*_test.go", "-l", "^func Fuzz[A-Za-z0-9_]+", root).Output()
	if err != nil {
		t.Fatalf("grep: %v", err)
	}
	for _, file := range splitLines(string(out)) {
		names, err := exec.Command("grep", "-oE", "^func Fuzz[A-Za-z0-9_]+", file).Output()
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, filepath.Dir(file))
		for _, n := range splitLines(string(names)) {
			key := filepath.Clean("./"+rel) + "." + n[len("func "):]
			if !listed[key] {
				t.Errorf("fuzz target %s is not in tests/fuzz's list", key)
			}
		}
	}
}

// splitLines returns the non-empty lines of s.
func splitLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}
