package check

import (
	"context"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// reach returns, for a connectivity function, who each member can reach in
// any number of hops.
func reach(n int, connected func(i, j int) bool) [][]bool {
	r := make([][]bool, n)
	for i := range r {
		r[i] = make([]bool, n)
		r[i][i] = true
	}
	for changed := true; changed; {
		changed = false
		for i := 0; i < n; i++ {
			for j := 0; j < n; j++ {
				for k := 0; k < n; k++ {
					if r[i][j] && connected(j, k) && !r[i][k] {
						r[i][k], changed = true, true
					}
				}
			}
		}
	}
	return r
}

func TestPartitionKinds(t *testing.T) {
	for _, n := range []int{3, 5} {
		for seed := int64(0); seed < 20; seed++ {
			rng := rand.New(rand.NewSource(seed))
			// halves: two groups, no link between them, full links within.
			conn, desc := halves(n, -1, rng)
			small := 0
			for j := 1; j < n; j++ {
				if conn(0, j) != conn(j, 0) {
					t.Fatalf("halves %s: asymmetric", desc)
				}
			}
			for i := 0; i < n; i++ {
				if !conn(0, i) {
					small++
				}
			}
			if small != n/2 && small != n-n/2 {
				t.Fatalf("n=%d halves %s: %d members cut off from m1", n, desc, small)
			}
			// The isolated leader reaches nobody and nobody reaches it.
			conn, desc = isolateLeader(n, 1, rng)
			for j := 0; j < n; j++ {
				if j != 1 && (conn(1, j) || conn(j, 1)) {
					t.Fatalf("%s: m2 still linked to m%d", desc, j+1)
				}
			}
			// A bridge: everyone reaches everyone in two hops, but some
			// pair has no direct link.
			conn, desc = bridge(n, -1, rng)
			r, direct := reach(n, conn), true
			for i := 0; i < n; i++ {
				for j := 0; j < n; j++ {
					if !r[i][j] {
						t.Fatalf("%s: m%d cannot reach m%d even through the bridge", desc, i+1, j+1)
					}
					direct = direct && conn(i, j)
				}
			}
			if direct {
				t.Fatalf("%s: nothing is cut", desc)
			}
			// One way: exactly one member's outgoing links are cut.
			conn, desc = oneWay(n, -1, rng)
			cut := 0
			for i := 0; i < n; i++ {
				for j := 0; j < n; j++ {
					if i != j && !conn(i, j) {
						cut++
						if !conn(j, i) {
							t.Fatalf("%s: m%d↔m%d cut both ways", desc, i+1, j+1)
						}
					}
				}
			}
			if cut != n-1 {
				t.Fatalf("%s: %d links cut, want %d", desc, cut, n-1)
			}
		}
	}
	// A ring of 5: each member links to exactly two others.
	conn, desc := ring(5, -1, rand.New(rand.NewSource(1)))
	for i := 0; i < 5; i++ {
		links := 0
		for j := 0; j < 5; j++ {
			if i != j && conn(i, j) {
				links++
			}
		}
		if links != 2 {
			t.Fatalf("%s: m%d has %d links, want 2", desc, i+1, links)
		}
	}
}

func TestParseNemeses(t *testing.T) {
	all, err := ParseNemeses("all")
	if err != nil || len(all) != 7 {
		t.Fatalf("all: %d nemeses, %v", len(all), err)
	}
	none, err := ParseNemeses("none")
	if err != nil || len(none) != 0 {
		t.Fatalf("none: %d nemeses, %v", len(none), err)
	}
	two, err := ParseNemeses(" kill , pause,kill")
	if err != nil || len(two) != 2 || two[0].Name() != "kill" || two[1].Name() != "pause" {
		t.Fatalf("kill,pause: %v, %v", two, err)
	}
	if _, err := ParseNemeses("partition,meteor"); err == nil || !strings.Contains(err.Error(), `"meteor"`) {
		t.Fatalf("unknown nemesis: %v", err)
	}
	for _, name := range NemesisList() {
		if NemesisNames()[name] == "" {
			t.Errorf("nemesis %s has no description", name)
		}
		if _, err := ParseNemeses(name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestParseWorkloads(t *testing.T) {
	all, err := ParseWorkloads("all", WorkloadOptions{})
	if err != nil || len(all) != len(workloadRegistry) {
		t.Fatalf("all: %d workloads, %v", len(all), err)
	}
	if _, err := ParseWorkloads("", WorkloadOptions{}); err == nil {
		t.Fatal("an empty workload list must be rejected")
	}
	if _, err := ParseWorkloads("register,bank", WorkloadOptions{}); err == nil {
		t.Fatal("unknown workload accepted")
	}
}

func TestSchedulerRecordsAndSkipsUnsupported(t *testing.T) {
	env := &Env{Start: time.Now(), Progress: &strings.Builder{}, Timeline: &Timeline{}}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	runNemeses(ctx, env, []Nemesis{unsupported{}}, rand.New(rand.NewSource(1)),
		Schedule{Quiet: time.Millisecond, Hold: time.Millisecond}, env.Timeline)
	ev := env.Timeline.Events()
	if len(ev) != 1 || !strings.Contains(ev[0].Err, "skipped") {
		t.Fatalf("timeline %+v: want one skipped entry", ev)
	}
}

type unsupported struct{}

func (unsupported) Name() string { return "unsupported" }
func (unsupported) Inject(_ context.Context, _ *Env, _ *rand.Rand) (Fault, error) {
	return Fault{}, ErrUnsupported
}

func TestReportLineAndHTML(t *testing.T) {
	rep := &Report{Config: Config{Seed: 9, Nodes: 3, Duration: time.Second, Nemeses: "kill", Workloads: "register"},
		Verdict: VerdictFail,
		Results: []Result{{Workload: "register", Verdict: VerdictFail, Summary: "3 operations",
			Anomalies: []string{"key k is <not> linearizable"}, Visualization: []byte(`<html>"vis"</html>`)}},
		Faults: []FaultEvent{{Nemesis: "kill", Desc: "kill -9 m1", Start: 1e9, End: 2e9}}}
	line := rep.Line()
	for _, want := range []string{"synod check: FAIL ", "seed=9", "register FAIL (3 operations)", "faults=1"} {
		if !strings.Contains(line, want) {
			t.Errorf("line %q lacks %q", line, want)
		}
	}
	path := filepath.Join(t.TempDir(), "r.html")
	if err := rep.WriteHTML(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	html := string(b)
	for _, want := range []string{"kill -9 m1", "&lt;not&gt;", "--seed 9", "<iframe srcdoc=\"&lt;html&gt;&#34;vis&#34;"} {
		if !strings.Contains(html, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}
