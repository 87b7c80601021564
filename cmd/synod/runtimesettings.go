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

// withRuntimeGodebug returns cur (a GODEBUG value) with the runtimeGodebug
// settings it does not mention appended, and whether it added any.
func withRuntimeGodebug(cur string) (string, bool) {
	set := map[string]bool{}
	for _, kv := range strings.Split(cur, ",") {
		if k, _, ok := strings.Cut(kv, "="); ok {
			set[strings.TrimSpace(k)] = true
		}
	}
	out, added := cur, false
	for _, kv := range runtimeGodebug {
		k, _, _ := strings.Cut(kv, "=")
		if set[k] {
			continue
		}
		if out != "" {
			out += ","
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
