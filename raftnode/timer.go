package raftnode

import (
	"sync"
	"time"
)

// timers recycles the timers that bound each call's wait by the member's
// request timeout. A context.WithTimeout per call cost a timer context, a
// timer, a done channel and a registration in the caller's context: four
// allocations and two timer-heap operations on every put and linearizable
// read, about 5% of a loaded leader's CPU (docs/performance.md, issue 18).
// The caller's own context still ends the wait on cancellation or its own
// deadline.
var timers sync.Pool

// startTimer returns a running timer that fires after the request timeout.
// The caller must stopTimer it.
func (n *Node) startTimer() *time.Timer {
	if t, ok := timers.Get().(*time.Timer); ok {
		t.Reset(n.c.cfg.RequestTimeout)
		return t
	}
	return time.NewTimer(n.c.cfg.RequestTimeout)
}

// stopTimer stops t and recycles it. Since Go 1.23 a stopped timer's
// channel holds no stale value, so the next Reset starts clean.
func stopTimer(t *time.Timer) {
	t.Stop()
	timers.Put(t)
}
