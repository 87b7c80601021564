package main

import (
	"fmt"
	"time"
)

// timerSlackApplied names the environment variable that marks a process
// already running with the timer slack it asked for (its value, in
// nanoseconds), so that it re-executes itself only once.
const timerSlackApplied = "SYNOD_TIMER_SLACK_APPLIED"

// defaultTimerSlack is --timer-slack's default. See applyTimerSlack and
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
