package check

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// A Workload drives client traffic during a run and checks what it saw.
//
// New workloads (elections, multi-group transactions, ...) are
// added by implementing Workload and listing a constructor in
// workloadRegistry.
type Workload interface {
	// Name is the name used by --workload.
	Name() string
	// Run issues operations until ctx ends, recording its history. Errors
	// of individual operations are part of the history, not returned; an
	// error means the workload could not run at all.
	Run(ctx context.Context, env *Env) error
	// Check runs after the faults were healed and the cluster converged,
	// and judges the history (it may also read the final state).
	Check(ctx context.Context, env *Env) Result
}

// Verdict is the outcome of a check.
type Verdict string

// Verdicts, from best to worst.
const (
	VerdictOK      Verdict = "ok"
	VerdictUnknown Verdict = "unknown" // the checker could not decide (e.g. it timed out)
	VerdictFail    Verdict = "FAIL"
)

// worse returns the worse of two verdicts.
func worse(a, b Verdict) Verdict {
	rank := map[Verdict]int{VerdictOK: 0, VerdictUnknown: 1, VerdictFail: 2}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// Result is one workload's judgement.
type Result struct {
	// Workload names the workload.
	Workload string
	// Verdict is the outcome.
	Verdict Verdict
	// Summary is one line of figures (operations, unknown outcomes, ...).
	Summary string
	// Anomalies describes each violation found, or why the verdict is
	// unknown.
	Anomalies []string
	// Notes are findings that are expected and do not affect the verdict,
	// such as unfenced lock holders that overlapped.
	Notes []string
	// Visualization is porcupine's HTML view of the history, if any.
	Visualization []byte
}

// WorkloadOptions tunes the built-in workloads.
type WorkloadOptions struct {
	// ClientsPerMember is the number of concurrent clients pinned to each
	// member.
	ClientsPerMember int
	// CheckTimeout bounds the linearizability check; past it the verdict
	// is unknown.
	CheckTimeout time.Duration
	// OpTimeout bounds each client call (2 s when zero). A longer one
	// keeps more requests waiting on a paused member, to be answered the
	// moment it continues.
	OpTimeout time.Duration
	// CatchUpTimeout bounds the wait, after the cluster converged, for
	// every member (or watcher) to reach the final revision (30 s when
	// zero). A member that answers but never gets there is an anomaly.
	CatchUpTimeout time.Duration
}

func (o WorkloadOptions) catchUpTimeout() time.Duration {
	if o.CatchUpTimeout > 0 {
		return o.CatchUpTimeout
	}
	return defaultCatchUpTimeout
}

func (o WorkloadOptions) opTimeout() time.Duration {
	if o.OpTimeout > 0 {
		return o.OpTimeout
	}
	return defaultOpTimeout
}

// workloadRegistry lists every workload by name, in the order of `all`.
var workloadRegistry = []struct {
	name string
	make func(WorkloadOptions) Workload
	doc  string
}{
	{"register", func(o WorkloadOptions) Workload { return newRegisterWorkload(o) }, "get, put and compare-and-set per key, checked for linearizability"},
	{"txn", func(o WorkloadOptions) Workload { return newTxnWorkload(o) }, "multi-key read, write and compare-and-set transactions on groups of keys, checked for strict serializability"},
	{"lost-writes", func(o WorkloadOptions) Workload { return newLostWritesWorkload(o) }, "every acknowledged put is on every member at the end; all members' HashKV agree"},
	{"watch", func(o WorkloadOptions) Workload { return newWatchWorkload(o) }, "one resuming watcher per member: ordered, no duplicates, no gaps, every acknowledged put, all watchers agree"},
	{"lock", func(o WorkloadOptions) Workload { return newLockWorkload(o) }, "clients contend for a lock on short leases: fenced holders never overlap; unfenced overlaps are reported"},
	{"lease", func(o WorkloadOptions) Workload { return newLeaseWorkload(o) }, "leases kept alive with acknowledged keep-alives never expire before their TTL from the last one"},
	{"catalog", func(o WorkloadOptions) Workload { return newCatalogWorkload(o) }, "Consul API registrations, TTL check flips and KV CAS checked for linearizability; session locks never overlap"},
}

// WorkloadNames lists the workloads --workload accepts (besides all), each
// with a one-line description.
func WorkloadNames() map[string]string {
	out := map[string]string{}
	for _, w := range workloadRegistry {
		out[w.name] = w.doc
	}
	return out
}

// WorkloadList lists the workload names in registry order.
func WorkloadList() []string {
	var out []string
	for _, w := range workloadRegistry {
		out = append(out, w.name)
	}
	return out
}

// ParseWorkloads turns a --workload list (names separated by commas, or
// "all") into workloads.
func ParseWorkloads(list string, o WorkloadOptions) ([]Workload, error) {
	if o.ClientsPerMember < 1 {
		o.ClientsPerMember = 1
	}
	var out []Workload
	seen := map[string]bool{}
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" || seen[name] {
			continue
		}
		found := false
		for _, w := range workloadRegistry {
			if name == "all" || w.name == name {
				found = true
				if !seen[w.name] {
					seen[w.name] = true
					out = append(out, w.make(o))
				}
			}
		}
		if !found {
			return nil, fmt.Errorf("check: unknown workload %q (known: all, %s)", name, strings.Join(WorkloadList(), ", "))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("check: no workload selected")
	}
	return out, nil
}
