package main

import (
	"fmt"
	"strings"
	"time"
)

// runtimeGodebug are the GODEBUG settings synod runs with unless the
// environment's GODEBUG sets them otherwise (applyRuntimeSettings adds
// them when it re-executes the process):
//
//   - gcshrinkstackoff=1: the garbage collector does not shrink goroutine
//     stacks. gRPC's long-lived request workers are idle, with a small
//     stack, when a collection runs, so it halved their stacks at every
//     collection (14 per second per member under a read load, whose heap
//     is a few MiB) and the next request grew them back by copying: 3-9 %
//     of a member's CPU in profiles under serializable reads, none with
//     the setting; RSS after the footprint load unchanged
//     (docs/performance.md, change 14).
var runtimeGodebug = []string{"gcshrinkstackoff=1"}

// runtimeMallocTunables are the GLIBC_TUNABLES settings synod runs with
// unless the environment's GLIBC_TUNABLES sets them otherwise
// (applyRuntimeSettings adds them when it re-executes the process; glibc
// reads them only at start, and a C library other than glibc ignores them).
// They concern only memory that Pebble allocates with C's malloc in a cgo
// build (memtables and block cache entries); the Go heap does not use it:
//
//   - arena_max=1: one malloc arena instead of up to eight per core. glibc
//     gives each thread that calls malloc while another holds an arena an
//     arena of its own, and Go runs Pebble's cgo calls on whichever thread
//     is free, so a member had 8-10 arenas, each keeping the space freed
//     by evicted cache blocks for its own next use: 45 MiB obtained for
//     40 MiB in use after the footprint load, 41 with one arena, about
//     4.5 MiB less resident per member (docs/performance.md, "Memory on
//     a small store"). The allocations are few (a block cache miss, a new memtable), so one arena's lock is
//     not contended.
var runtimeMallocTunables = []string{"glibc.malloc.arena_max=1"}

// withDefaults returns cur, a list of name=value settings joined by sep
// (GODEBUG, GLIBC_TUNABLES), with those of defs whose name cur does not
// mention appended, and whether it added any. A setting in cur stands: it
// is the operator's choice.
func withDefaults(cur, sep string, defs []string) (string, bool) {
	set := map[string]bool{}
	for _, kv := range strings.Split(cur, sep) {
		if k, _, ok := strings.Cut(kv, "="); ok {
			set[strings.TrimSpace(k)] = true
		}
	}
	out, added := cur, false
	for _, kv := range defs {
		k, _, _ := strings.Cut(kv, "=")
		if set[k] {
			continue
		}
		if out != "" {
			out += sep
		}
		out, added = out+kv, true
	}
	return out, added
}

// timerSlackApplied names the environment variable that marks a process
// already running with the timer slack it asked for (its value, in
// nanoseconds), so that it re-executes itself only once.
const timerSlackApplied = "SYNOD_TIMER_SLACK_APPLIED"

// defaultTimerSlack is --timer-slack's default. See applyRuntimeSettings and
// docs/performance.md: on the 2-vCPU VM of the benchmarks it cut the CPU
// per put by 20-25 % under 100 clients and a third of the context
// switches of a one-client put, at the cost of timers firing up to 1 ms
// late (synod's shortest timer is the 100 ms raft tick).
const defaultTimerSlack = time.Millisecond

// maxTimerSlack bounds --timer-slack: beyond it timers would visibly drift
// against the heartbeat interval.
const maxTimerSlack = 10 * time.Millisecond

func checkTimerSlack(d time.Duration) error {
	if d < 0 || d > maxTimerSlack {
		return fmt.Errorf("--timer-slack must be between 0 and %v, got %v", maxTimerSlack, d)
	}
	return nil
}
