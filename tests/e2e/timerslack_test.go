package e2e

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// threadSlacks returns the timer slack of every thread of process pid, in
// nanoseconds as the kernel prints them. Reading another process's slack
// needs CAP_SYS_NICE; without it the test is skipped.
func threadSlacks(t *testing.T, pid int) []string {
	t.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("threads of %d: %v", pid, err)
	}
	var out []string
	for _, task := range tasks {
		b, err := os.ReadFile(filepath.Join("/proc", filepath.Base(task), "timerslack_ns"))
		if errors.Is(err, os.ErrPermission) {
			t.Skipf("cannot read another process's timer slack: %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.TrimSpace(string(b)))
	}
	return out
}

// TestTimerSlack checks that --timer-slack reaches every thread of a real
// member, the Go runtime's own among them (they exist before main runs, so
// the process re-executes itself with the slack set; its PID stays), and
// that --timer-slack=0 leaves the slack it inherited; and that the
// re-executed process runs with synod's GODEBUG and GLIBC_TUNABLES
// settings either way.
func TestTimerSlack(t *testing.T) {
	if _, err := os.Stat("/proc/self/timerslack_ns"); err != nil {
		t.Skip("no per-thread timer slack here")
	}
	own, err := os.ReadFile("/proc/self/timerslack_ns")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ flag, want string }{
		{"--timer-slack=3ms", "3000000"},
		{"--timer-slack=0", strings.TrimSpace(string(own))},
	} {
		cl := startCluster(t, "synod", 1, tc.flag)
		m := cl.Members[0]
		m.mu.Lock()
		pid := m.cmd.Process.Pid
		m.mu.Unlock()
		slacks := threadSlacks(t, pid)
		for i, s := range slacks {
			if s != tc.want {
				t.Errorf("%s: thread %d of %d has timer slack %s ns, want %s", tc.flag, i, len(slacks), s, tc.want)
			}
		}
		if len(slacks) < 3 {
			t.Errorf("%s: only %d threads; the runtime's own threads are missing from the check", tc.flag, len(slacks))
		}
		// The runtime reads GODEBUG only at start: the re-executed process
		// must have been given synod's settings.
		environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			t.Fatal(err)
		}
		env := strings.Split(string(environ), "\x00")
		for _, want := range []struct{ name, setting string }{
			{"GODEBUG", "gcshrinkstackoff=1"},
			// glibc reads its tunables only at start too (one malloc
			// arena for Pebble's memtables and cache: docs/performance.md,
			// "Memory on a small store").
			{"GLIBC_TUNABLES", "glibc.malloc.arena_max=1"},
		} {
			if !slices.ContainsFunc(env, func(kv string) bool {
				return strings.HasPrefix(kv, want.name+"=") && strings.Contains(kv, want.setting)
			}) {
				t.Errorf("%s: the member runs without %s %s", tc.flag, want.name, want.setting)
			}
		}
		cl.Stop()
	}
}
