package main

import "testing"

func TestWithRuntimeGodebug(t *testing.T) {
	for _, tc := range []struct {
		cur, want string
		added     bool
	}{
		{"", "gcshrinkstackoff=1", true},
		{"madvdontneed=1", "madvdontneed=1,gcshrinkstackoff=1", true},
		{"gcshrinkstackoff=0", "gcshrinkstackoff=0", false}, // the operator's choice stands
		{"x=1, gcshrinkstackoff=1", "x=1, gcshrinkstackoff=1", false},
		{"gcshrinkstackoffx=1", "gcshrinkstackoffx=1,gcshrinkstackoff=1", true},
		{",,", ",,,gcshrinkstackoff=1", true},
	} {
		got, added := withRuntimeGodebug(tc.cur)
		if got != tc.want || added != tc.added {
			t.Errorf("withRuntimeGodebug(%q) = %q, %v; want %q, %v", tc.cur, got, added, tc.want, tc.added)
		}
	}
}
