package check

import (
	"strings"
	"testing"
)

func TestWatchCompare(t *testing.T) {
	env := &Env{Cluster: &Cluster{members: []*member{{name: "m1"}, {name: "m2"}}}}
	ev := func(rev int64, k, v string) watchEvent { return watchEvent{Rev: rev, Key: k, Value: v} }
	newW := func() *watchWorkload {
		w := newWatchWorkload(WorkloadOptions{})
		w.start = 10
		w.tried = map[string]string{"a": "1", "b": "2", "c": "3"}
		w.acked = map[int64]watchEvent{10: ev(10, "a", "1"), 11: ev(11, "b", "2")}
		return w
	}
	full := []watchEvent{ev(10, "a", "1"), ev(11, "b", "2"), ev(12, "c", "3")}
	for _, tc := range []struct {
		name   string
		m1, m2 []watchEvent
		gaps2  [][2]int64
		errs2  []string
		want   []string
	}{
		{"agreeing watchers", full, full, nil, nil, nil},
		{"an acknowledged put missed", full, []watchEvent{ev(10, "a", "1"), ev(12, "c", "3")}, nil, nil,
			[]string{"m2's watcher missed revision 11"}},
		{"an unacknowledged put one watcher saw, the other missed", full, full[:2], nil, nil,
			[]string{"m2's watcher missed revision 12"}},
		{"a compaction gap is not a miss", full, []watchEvent{ev(12, "c", "3")}, [][2]int64{{10, 11}}, nil, nil},
		{"watchers disagree", full, []watchEvent{ev(10, "a", "1"), ev(11, "c", "3"), ev(12, "c", "3")}, nil, nil,
			[]string{`m2 saw c="3" at revision 11, where another saw b="2"`}},
		{"an event never written", full, append(full[:3:3], ev(13, "z", "0")), nil, nil,
			[]string{`m2 saw z="0" at revision 13, which was never written`, "m1's watcher missed revision 13"}},
		{"out of order", full, full, nil, []string{"event at revision 11 after revision 12"},
			[]string{"m2: event at revision 11"}},
	} {
		w := newW()
		w.watchers = []*watcher{{member: 0, events: tc.m1}, {member: 1, events: tc.m2, gaps: tc.gaps2, errs: tc.errs2}}
		got := w.compare(env, 13)
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
