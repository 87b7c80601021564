package main

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// applyRuntimeSettings puts in place the settings that must exist before
// the Go runtime starts, by re-executing the process once (same PID,
// arguments and environment, plus timerSlackApplied and the GODEBUG and
// GLIBC_TUNABLES additions)
// when they are not yet in place:
//
//   - slack as every thread's timer slack: how late the kernel may fire a
//     thread's timers (sleeps, poll timeouts) to wake it together with
//     other work. The default, 50 µs, lets the Go runtime's monitor thread
//     (sysmon, which polls every 20 µs while goroutines block in syscalls
//     such as fdatasync) and the scheduler's idle threads wake tens of
//     thousands of times per second; each wake is a context switch, which
//     costs tens of microseconds on a virtual machine. A thread's slack is
//     inherited by the threads it starts and kept across execve(2), but the
//     runtime starts its threads before main runs, so the process sets the
//     slack of its current thread and then re-executes. 0 leaves the slack
//     the process inherited.
//   - runtimeGodebug (see there), which the runtime reads only at start,
//     and runtimeMallocTunables, which glibc reads only at start.
//
// It returns only when everything is in place or could not be (the error
// says why; the process then goes on with the defaults). In a test binary
// (which calls runServe in-process) it does nothing: re-executing would
// rerun the tests.
func applyRuntimeSettings(slack time.Duration) error {
	want := strconv.FormatInt(int64(slack), 10)
	have := os.Getenv(timerSlackApplied)
	slackDone := have == want || (slack == 0 && have == "")
	env, addEnv := runtimeEnv()
	if (slackDone && !addEnv) || testing.Testing() {
		return nil
	}
	runtime.LockOSThread() // prctl and execve must be the same thread
	defer runtime.UnlockOSThread()
	if !slackDone && slack > 0 {
		if err := unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(slack), 0, 0, 0); err != nil {
			return err
		}
	}
	env[timerSlackApplied] = want
	next := make([]string, 0, len(env))
	for k, v := range env {
		next = append(next, k+"="+v)
	}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !has(env, k) {
			next = append(next, kv)
		}
	}
	return unix.Exec("/proc/self/exe", os.Args, next)
}

// runtimeEnv returns the values that the environment variables read at
// start (GODEBUG, GLIBC_TUNABLES) must have for synod's settings, by name,
// and whether any differs from the current environment.
func runtimeEnv() (map[string]string, bool) {
	godebug, addGodebug := withDefaults(os.Getenv("GODEBUG"), ",", runtimeGodebug)
	tunables, addTunables := withDefaults(os.Getenv("GLIBC_TUNABLES"), ":", runtimeMallocTunables)
	return map[string]string{"GODEBUG": godebug, "GLIBC_TUNABLES": tunables}, addGodebug || addTunables
}

// has reports whether env sets name.
func has(env map[string]string, name string) bool {
	_, ok := env[name]
	return ok
}
