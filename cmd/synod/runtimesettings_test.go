package main

import "testing"

func TestWithDefaults(t *testing.T) {
	for _, tc := range []struct {
		cur, sep string
		defs     []string
		want     string
		added    bool
	}{
		{"", ",", runtimeGodebug, "gcshrinkstackoff=1", true},
		{"madvdontneed=1", ",", runtimeGodebug, "madvdontneed=1,gcshrinkstackoff=1", true},
		{"gcshrinkstackoff=0", ",", runtimeGodebug, "gcshrinkstackoff=0", false}, // the operator's choice stands
		{"x=1, gcshrinkstackoff=1", ",", runtimeGodebug, "x=1, gcshrinkstackoff=1", false},
		{"gcshrinkstackoffx=1", ",", runtimeGodebug, "gcshrinkstackoffx=1,gcshrinkstackoff=1", true},
		{",,", ",", runtimeGodebug, ",,,gcshrinkstackoff=1", true},
		{"", ":", runtimeMallocTunables, "glibc.malloc.arena_max=1", true},
		{"glibc.malloc.arena_max=4", ":", runtimeMallocTunables, "glibc.malloc.arena_max=4", false},
		{"glibc.malloc.tcache_count=0", ":", runtimeMallocTunables, "glibc.malloc.tcache_count=0:glibc.malloc.arena_max=1", true},
		{"a=0", ":", []string{"a=1", "b=2"}, "a=0:b=2", true},
	} {
		got, added := withDefaults(tc.cur, tc.sep, tc.defs)
		if got != tc.want || added != tc.added {
			t.Errorf("withDefaults(%q, %q) = %q, %v; want %q, %v", tc.cur, tc.sep, got, added, tc.want, tc.added)
		}
	}
}
