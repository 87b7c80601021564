package check

import (
	"strings"
	"testing"
)

func TestLostWritesCompare(t *testing.T) {
	w := newLostWritesWorkload(WorkloadOptions{})
	w.attempted = map[string]string{"a": "1", "b": "2", "c": "3"}
	w.acked = map[string]string{"a": "1", "b": "2"} // c's outcome is unknown
	for _, tc := range []struct {
		name  string
		state map[string]string
		want  []string
	}{
		{"everything acknowledged is there", map[string]string{"a": "1", "b": "2"}, nil},
		{"an unknown write may be there", map[string]string{"a": "1", "b": "2", "c": "3"}, nil},
		{"a lost write", map[string]string{"a": "1"}, []string{"m1 lost b"}},
		{"a wrong value", map[string]string{"a": "1", "b": "9"}, []string{`m1 has b="9", acknowledged "2"`}},
		{"a write nobody made", map[string]string{"a": "1", "b": "2", "z": "0"}, []string{`m1 has z="0", which was never written`}},
	} {
		got := w.compare("m1", tc.state)
		if len(got) != len(tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
			continue
		}
		for i := range got {
			if !strings.HasPrefix(got[i], tc.want[i]) {
				t.Errorf("%s: %q, want prefix %q", tc.name, got[i], tc.want[i])
			}
		}
	}
}
