// Package check is `synod check`, a Jepsen-style verifier at process level:
// it starts a cluster of real `synod serve` processes whose peer links all
// go through fault-injecting proxies (package check/faultproxy), drives
// workloads through the etcd v3 API with clientv3 while nemeses partition
// the network, kill, pause and compact on a seeded schedule, then heals
// everything, lets the cluster converge and checks what the clients saw:
// linearizability with porcupine (register, txn), durability and replica
// agreement (lost-writes), watch guarantees (watch), fenced locking (lock)
// and lease expiry (lease), also across member replacement (the member
// nemesis); and, through Consul's HTTP API with the real consul/api
// client, linearizable registrations, check flips and KV CAS with
// non-overlapping session locks (catalog). It prints a one-line verdict and writes an HTML
// report with porcupine's visualization and the fault timeline.
//
// Workloads and nemeses are registries (workloadRegistry, nemesisRegistry):
// a new fault or workload is one type and one line.
package check

import (
	"context"
	"fmt"
	"io"
	"math/rand"
	"os"
	"strings"
	"sync"
	"time"
)

// Config is one `synod check` run.
type Config struct {
	// Bin is the synod executable to check.
	Bin string
	// Nodes is the cluster size.
	Nodes int
	// Duration is how long workloads and nemeses run.
	Duration time.Duration
	// Nemeses and Workloads are the --nemesis and --workload lists.
	Nemeses, Workloads string
	// Seed drives every random choice of the checker (faults, their
	// timing, operations); the same seed replays the same schedule.
	Seed int64
	// Dir is where the run's directory (holding the member directories)
	// is made; the system's temporary directory when empty.
	Dir string
	// KeepData keeps the member directories (data, logs) after the run.
	// They are always kept when the verdict is not OK.
	KeepData bool
	// ReportPath, if set, receives the HTML report.
	ReportPath string
	// Progress receives progress lines; nil discards them.
	Progress io.Writer
	// Schedule times the faults; DefaultSchedule when zero.
	Schedule Schedule
	// Workload tunes the workloads.
	Workload WorkloadOptions
	// ServeArgs are extra `synod serve` flags for every member.
	ServeArgs []string
}

// DefaultSchedule: a fault every 2–4 s, lasting 3–6 s.
var DefaultSchedule = Schedule{Quiet: 2 * time.Second, Hold: 3 * time.Second}

// DefaultServeArgs make faults bite in short runs: frequent snapshots, so a
// member cut off for a few seconds catches up from a snapshot stream; and
// the leader's corruption checks (the whole-history check every 2 s, the
// compaction hash check every second), so a run also shows that faults
// never make members' histories differ (and that the checks raise no false
// alarm): any alarm raised by the end fails the run.
var DefaultServeArgs = []string{"--snapshot-count", "500", "--corrupt-check-time", "2s",
	"--feature-gates", "CompactHashCheck=true", "--compact-hash-check-time", "1s"}

// Report is the outcome of a run.
type Report struct {
	// Config is the run's configuration.
	Config Config
	// Verdict is the worst verdict of all checks.
	Verdict Verdict
	// Results holds one entry per workload.
	Results []Result
	// Faults is the fault timeline.
	Faults []FaultEvent
	// Cluster lists cluster-level anomalies: members that exited on their
	// own, a cluster that did not converge after healing.
	Cluster []string
	// Dir is where the member directories are (removed unless kept).
	Dir string
	// DataKept says whether Dir still exists.
	DataKept bool
	// Elapsed is the wall time of the whole run.
	Elapsed time.Duration
}

// Run performs one check. The error is for setup failures (no binary, a
// cluster that never becomes healthy); anomalies are in the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	began := time.Now()
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	if cfg.Schedule == (Schedule{}) {
		cfg.Schedule = DefaultSchedule
	}
	if cfg.ServeArgs == nil {
		cfg.ServeArgs = DefaultServeArgs
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	nemeses, err := ParseNemeses(cfg.Nemeses)
	if err != nil {
		return nil, err
	}
	workloads, err := ParseWorkloads(cfg.Workloads, cfg.Workload)
	if err != nil {
		return nil, err
	}
	dir, err := runDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	rep := &Report{Config: cfg, Dir: dir, Verdict: VerdictOK}
	defer func() {
		rep.Elapsed = time.Since(began)
		rep.DataKept = cfg.KeepData || rep.Verdict != VerdictOK
		if !rep.DataKept {
			os.RemoveAll(dir)
		}
	}()
	cl, err := StartCluster(ClusterConfig{Bin: cfg.Bin, Nodes: cfg.Nodes, Dir: dir, Seed: cfg.Seed,
		Token: fmt.Sprintf("synod-check-%d", cfg.Seed), ExtraArgs: cfg.ServeArgs, Consul: needsConsul(workloads)})
	if err != nil {
		rep.Verdict = VerdictUnknown
		return rep, err
	}
	defer cl.Stop()
	env, err := newEnv(cl, cfg.Seed, cfg.Progress)
	if err != nil {
		rep.Verdict = VerdictUnknown
		return rep, err
	}
	defer env.close()
	if err := waitHealthy(ctx, env, time.Minute); err != nil {
		rep.Verdict = VerdictUnknown
		return rep, fmt.Errorf("%w (member logs in %s)", err, dir)
	}
	env.Start = time.Now()
	env.Logf("cluster of %d healthy; running %v", cl.Size(), cfg.Duration)
	runPhase(ctx, env, cfg, nemeses, workloads)
	rep.Faults = env.Timeline.Events()
	if ctx.Err() != nil {
		rep.Verdict = VerdictUnknown
		return rep, fmt.Errorf("check: interrupted after %.1fs; nothing was checked", time.Since(env.Start).Seconds())
	}
	healAndCheck(ctx, env, workloads, rep)
	rep.Elapsed = time.Since(began)
	if cfg.ReportPath != "" {
		if err := rep.WriteHTML(cfg.ReportPath); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// healAndCheck heals every fault, waits for the cluster to converge, runs
// every workload's check and records the verdicts in rep.
func healAndCheck(ctx context.Context, env *Env, workloads []Workload, rep *Report) {
	env.Logf("healing every fault and waiting for the cluster to converge")
	if err := env.Cluster.HealAll(); err != nil {
		rep.Cluster = append(rep.Cluster, "healing: "+err.Error())
	}
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	if err := env.RejoinRemoved(rctx); err != nil {
		rep.Cluster = append(rep.Cluster, "healing: "+err.Error())
	}
	cancel()
	if err := waitHealthy(ctx, env, time.Minute); err != nil {
		rep.Cluster = append(rep.Cluster, "after healing every fault: "+err.Error())
	} else if err := env.CheckVoters(ctx); err != nil {
		rep.Cluster = append(rep.Cluster, "after healing every fault: "+err.Error())
	} else if err := env.CheckAlarms(ctx); err != nil {
		rep.Cluster = append(rep.Cluster, "after healing every fault: "+err.Error())
	}
	for _, w := range workloads {
		env.Logf("checking %s", w.Name())
		res := w.Check(ctx, env)
		rep.Results = append(rep.Results, res)
		rep.Verdict = worse(rep.Verdict, res.Verdict)
	}
	rep.Cluster = append(rep.Cluster, env.Cluster.Crashes()...)
	if len(rep.Cluster) > 0 {
		rep.Verdict = VerdictFail
	}
}

func (c *Config) validate() error {
	switch {
	case c.Nodes < 1:
		return fmt.Errorf("check: --nodes must be at least 1, got %d", c.Nodes)
	case c.Duration <= 0:
		return fmt.Errorf("check: --duration must be positive, got %v", c.Duration)
	case c.Bin == "":
		return fmt.Errorf("check: no synod binary given")
	}
	return nil
}

// runDir makes a fresh directory for the run inside dir (the system's
// temporary directory when empty). Only that directory is ever removed.
func runDir(dir string) (string, error) {
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", fmt.Errorf("check: %w", err)
		}
	}
	d, err := os.MkdirTemp(dir, "synod-check-")
	if err != nil {
		return "", fmt.Errorf("check: %w", err)
	}
	return d, nil
}

func waitHealthy(ctx context.Context, env *Env, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return env.WaitHealthy(ctx)
}

// runPhase runs the workloads and the nemesis schedule for cfg.Duration.
func runPhase(ctx context.Context, env *Env, cfg Config, nemeses []Nemesis, workloads []Workload) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var wg sync.WaitGroup
	for _, w := range workloads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.Run(ctx, env); err != nil {
				env.Logf("workload %s: %v", w.Name(), err)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		runNemeses(ctx, env, nemeses, rand.New(rand.NewSource(cfg.Seed)), cfg.Schedule, env.Timeline)
	}()
	wg.Wait()
}

// Line is the one-line verdict.
func (r *Report) Line() string {
	word := map[Verdict]string{VerdictOK: "OK", VerdictFail: "FAIL", VerdictUnknown: "UNKNOWN"}[r.Verdict]
	var parts []string
	for _, res := range r.Results {
		part := fmt.Sprintf("%s %s", res.Workload, res.Verdict)
		if res.Summary != "" {
			part += " (" + res.Summary + ")"
		}
		parts = append(parts, part)
	}
	if len(r.Cluster) > 0 {
		parts = append(parts, fmt.Sprintf("cluster FAIL (%s)", strings.Join(r.Cluster, "; ")))
	}
	faults := 0
	for _, f := range r.Faults {
		if f.Err == "" {
			faults++
		}
	}
	return fmt.Sprintf("synod check: %s seed=%d nodes=%d duration=%v nemesis=%s faults=%d: %s",
		word, r.Config.Seed, r.Config.Nodes, r.Config.Duration, orNone(r.Config.Nemeses), faults, strings.Join(parts, "; "))
}

func orNone(s string) string {
	if strings.TrimSpace(s) == "" {
		return "none"
	}
	return s
}
