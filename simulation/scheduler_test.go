package simulation

import (
	"fmt"
	"testing"
)

// TestSchedulerOrder: events run by time, ties in the order they were
// scheduled, events scheduled while running run in turn, and runUntil stops
// at its bound with the clock there.
func TestSchedulerOrder(t *testing.T) {
	tests := []struct {
		name  string
		delay []Time
		until Time
		want  string
	}{
		{"by time", []Time{30, 10, 20}, 100, "1@10 2@20 0@30 "},
		{"ties keep insertion order", []Time{5, 5, 5}, 100, "0@5 1@5 2@5 "},
		{"negative delay is now", []Time{-3, 0}, 100, "0@0 1@0 "},
		{"stops at the bound", []Time{10, 50, 51}, 50, "0@10 1@50 "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s scheduler
			got := ""
			for i, d := range tc.delay {
				s.after(d, func() { got += fmt.Sprintf("%d@%d ", i, s.now) })
			}
			s.runUntil(tc.until)
			if got != tc.want {
				t.Fatalf("ran %q, want %q", got, tc.want)
			}
			if s.now != tc.until {
				t.Fatalf("clock %d after runUntil(%d)", s.now, tc.until)
			}
		})
	}
}

// TestSchedulerNested: an event scheduled by a running event at delay 0
// runs after the events already due at that instant.
func TestSchedulerNested(t *testing.T) {
	var s scheduler
	got := ""
	s.after(1, func() {
		got += "a"
		s.after(0, func() { got += "c" })
	})
	s.after(1, func() { got += "b" })
	s.runUntil(1)
	if got != "abc" {
		t.Fatalf("ran %q, want abc", got)
	}
}
