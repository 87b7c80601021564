package compactor

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// The expected schedules below are derived by hand from etcd 3.7.3's
// server/etcdserver/api/v3compactor (periodic.go, revision.go): etcd's own
// compactors cannot be driven from outside their package (their clock is
// fixed to the real one by v3compactor.New), so the rules are restated here
// and every expectation names the rule it follows:
//
//   - periodic, period P: a sample of the revision every step = min(P, 1h)/10,
//     the last P/step+1 samples kept; at each step, compact at the oldest
//     sample once now - last success >= P (the first time) or min(P, 1h)
//     (afterwards), never twice at the same revision; a failure is retried at
//     the next step with the window moved on.
//   - revision, retention R: every 5 minutes, compact at current - R unless
//     that is <= 0 or the revision last compacted.
//   - only the leader compacts; a follower keeps sampling, so a new leader
//     compacts at its first step once P has passed since its start.

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// oneWritePerSecond is the store's revision after d: 1 + whole seconds.
func oneWritePerSecond(d time.Duration) int64 { return 1 + int64(d/time.Second) }

// compaction is one compaction the schedule asked for: when, and at which
// revision.
type compaction struct {
	At  time.Duration
	Rev int64
}

func (c compaction) String() string { return fmt.Sprintf("%v@%d", c.At, c.Rev) }

// drive runs s over a fake clock from t0 to until, exactly as the server's
// goroutine does, and returns the compactions asked for. failed says which
// attempts (counted from 1) fail.
func drive(s Schedule, until time.Duration, rev func(time.Duration) int64, leader func(time.Duration) bool, failed func(n int) bool) []compaction {
	var out []compaction
	attempts := 0
	s.Observe(rev(0))
	for at := s.Interval(); at <= until; at += s.Interval() {
		if leader(at) {
			if r, ok := s.Due(t0.Add(at), rev(at)); ok {
				attempts++
				ok := !failed(attempts)
				s.Done(t0.Add(at), r, ok)
				if ok {
					out = append(out, compaction{at, r})
				}
			}
		}
		s.Observe(rev(at))
	}
	return out
}

func always(time.Duration) bool { return true }
func never(int) bool            { return false }
func sec(d time.Duration) int64 { return oneWritePerSecond(d) }

func TestSchedule(t *testing.T) {
	m, h, s := time.Minute, time.Hour, time.Second
	constant := func(time.Duration) int64 { return 42 }
	tests := []struct {
		name      string
		mode, ret string
		until     time.Duration
		rev       func(time.Duration) int64
		leader    func(time.Duration) bool
		failed    func(int) bool
		want      []compaction
	}{
		// P=5m: step 30s, 11 samples. First at 5m at the sample of 0; then
		// every 5m at the sample 5m30s back (samples 4m30s..9m30s at 10m).
		{"periodic 5m", ModePeriodic, "5m", 20 * m, oneWritePerSecond, always, never,
			[]compaction{{5 * m, 1}, {10 * m, sec(4*m + 30*s)}, {15 * m, sec(9*m + 30*s)}, {20 * m, sec(14*m + 30*s)}}},
		// P=30s: step 3s, 11 samples.
		{"periodic 30s", ModePeriodic, "30s", 90 * s, oneWritePerSecond, always, never,
			[]compaction{{30 * s, 1}, {60 * s, sec(27 * s)}, {90 * s, sec(57 * s)}}},
		// A bare number is hours: P=1h, step 6m, 11 samples.
		{"periodic bare 1", ModePeriodic, "1", 3 * h, oneWritePerSecond, always, never,
			[]compaction{{h, 1}, {2 * h, sec(54 * m)}, {3 * h, sec(h + 54*m)}}},
		// P=2h > 1h: step 6m, 21 samples; first after 2h, then every hour
		// (not every 2h), each at the sample 2h6m back.
		{"periodic 2h compacts hourly", ModePeriodic, "2h", 5 * h, oneWritePerSecond, always, never,
			[]compaction{{2 * h, 1}, {3 * h, sec(54 * m)}, {4 * h, sec(h + 54*m)}, {5 * h, sec(2*h + 54*m)}}},
		// No writes: the oldest sample stays the revision already compacted.
		{"periodic idle store compacts once", ModePeriodic, "5m", 30 * m, constant, always, never,
			[]compaction{{5 * m, 42}}},
		// The first attempt at 5m fails: retried at the next step (30s
		// later); the window (11 samples: 0..5m) still starts at 0. The
		// next success counts from 5m30s, at the sample 5m30s back (5m).
		{"periodic failure retried next step", ModePeriodic, "5m", 11 * m, oneWritePerSecond, always,
			func(n int) bool { return n == 1 },
			[]compaction{{5*m + 30*s, 1}, {10*m + 30*s, sec(5 * m)}}},
		// A follower for 20 minutes keeps sampling; as leader it compacts
		// at its first step, at the sample 5m30s back.
		{"periodic new leader compacts at once", ModePeriodic, "5m", 25 * m, oneWritePerSecond,
			func(d time.Duration) bool { return d >= 20*m }, never,
			[]compaction{{20 * m, sec(14*m + 30*s)}, {25 * m, sec(19*m + 30*s)}}},
		{"periodic never leader", ModePeriodic, "5m", h, oneWritePerSecond,
			func(time.Duration) bool { return false }, never, nil},
		// R=1000 at 1 write/s: current-1000 is positive from 20m (1201).
		{"revision 1000", ModeRevision, "1000", 30 * m, oneWritePerSecond, always, never,
			[]compaction{{20 * m, 201}, {25 * m, 501}, {30 * m, 801}}},
		{"revision idle store compacts once", ModeRevision, "10", 30 * m, constant, always, never,
			[]compaction{{5 * m, 32}}},
		{"revision failure retried", ModeRevision, "10", 15 * m, constant, always,
			func(n int) bool { return n == 1 }, []compaction{{10 * m, 32}}},
		{"revision follower then leader", ModeRevision, "100", 20 * m, oneWritePerSecond,
			func(d time.Duration) bool { return d >= 15*m }, never,
			[]compaction{{15 * m, 801}, {20 * m, 1101}}},
		// A duration in revision mode counts its nanoseconds (etcd).
		{"revision 1h is 3.6e12 revisions", ModeRevision, "1h", h, oneWritePerSecond, always, never, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseRetention(tc.mode, tc.ret)
			if err != nil {
				t.Fatal(err)
			}
			got := drive(New(p, t0, 0), tc.until, tc.rev, tc.leader, tc.failed)
			if !slices.Equal(got, tc.want) {
				t.Errorf("compactions = %v\nwant          %v", got, tc.want)
			}
		})
	}
}

func TestScheduleIntervals(t *testing.T) {
	for _, tc := range []struct {
		mode, ret string
		want      time.Duration
	}{
		{ModePeriodic, "5m", 30 * time.Second},
		{ModePeriodic, "1h", 6 * time.Minute},
		{ModePeriodic, "24h", 6 * time.Minute},
		{ModePeriodic, "59m", 354 * time.Second},
		{ModeRevision, "5", RevisionInterval},
	} {
		p, err := ParseRetention(tc.mode, tc.ret)
		if err != nil {
			t.Fatal(err)
		}
		if got := New(p, t0, 0).Interval(); got != tc.want {
			t.Errorf("%s %s: interval %v, want %v", tc.mode, tc.ret, got, tc.want)
		}
	}
	p, _ := ParseRetention(ModeRevision, "5")
	if got := New(p, t0, time.Second).Interval(); got != time.Second {
		t.Errorf("shortened revision interval = %v, want 1s", got)
	}
}

func TestParseRetention(t *testing.T) {
	tests := []struct {
		mode, ret string
		want      Policy
		err       string // etcd's text where etcd has one
	}{
		{ModePeriodic, "0", Policy{Mode: ModePeriodic}, ""},
		{ModePeriodic, "", Policy{Mode: ModePeriodic}, ""},
		{ModeRevision, "0", Policy{Mode: ModeRevision}, ""},
		{ModePeriodic, "1", Policy{Mode: ModePeriodic, Period: time.Hour}, ""},
		{ModePeriodic, "30m", Policy{Mode: ModePeriodic, Period: 30 * time.Minute}, ""},
		{ModePeriodic, "1h30m", Policy{Mode: ModePeriodic, Period: 90 * time.Minute}, ""},
		{ModeRevision, "1000", Policy{Mode: ModeRevision, Revisions: 1000}, ""},
		{ModeRevision, "1h", Policy{Mode: ModeRevision, Revisions: int64(time.Hour)}, ""},
		{"foo", "1", Policy{}, `unknown auto-compaction-mode "foo"`},
		{"", "1", Policy{}, `undefined auto-compaction-mode`},
		{ModePeriodic, "abc", Policy{}, `error parsing CompactionRetention: time: invalid duration "abc"`},
		{ModePeriodic, "-1", Policy{}, `error parsing CompactionRetention: time: missing unit in duration "-1"`},
		{ModeRevision, "-5m", Policy{}, `--auto-compaction-retention must not be negative, not "-5m"`},
		{ModePeriodic, "5ns", Policy{}, `--auto-compaction-retention "5ns" is shorter than 10ns`},
		{ModePeriodic, "99999999999", Policy{}, `--auto-compaction-retention "99999999999" is too long`},
	}
	for _, tc := range tests {
		got, err := ParseRetention(tc.mode, tc.ret)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("ParseRetention(%q, %q) error = %v, want %q", tc.mode, tc.ret, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseRetention(%q, %q) = %+v, %v; want %+v", tc.mode, tc.ret, got, err, tc.want)
		}
	}
	if p, _ := ParseRetention(ModePeriodic, "0"); p.Enabled() || New(p, t0, 0) != nil {
		t.Error("a retention of 0 must turn auto compaction off")
	}
}
