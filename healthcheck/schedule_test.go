package healthcheck

import (
	"strings"
	"testing"
	"time"

	"github.com/synod-db/synod/catalog"
)

var t0 = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

func httpSpec(id string, interval time.Duration) Spec {
	return Spec{Key: Key{Node: "m0", CheckID: id}, ServiceID: "web", Type: TypeHTTP,
		Def:     catalog.CheckDefinition{HTTP: "http://x/health", Interval: catalog.Duration(interval)},
		Current: Result{Status: catalog.StatusCritical}, Rev: 10}
}

// dueAt runs the schedule forward from now until the check is due, and
// returns when.
func dueAt(t *testing.T, s *Schedule, now time.Time) time.Time {
	t.Helper()
	next := s.NextWake()
	if next.IsZero() {
		t.Fatal("nothing is due")
	}
	if next.Before(now) {
		next = now
	}
	return next
}

func TestDueTimes(t *testing.T) {
	s := NewSchedule(Options{})
	sp := httpSpec("c", 2*time.Second)
	s.Sync([]Spec{sp}, t0)
	first := dueAt(t, s, t0)
	if first.Before(t0) || !first.Before(t0.Add(2*time.Second)) {
		t.Fatalf("first probe at %v, want within one interval of %v", first, t0)
	}
	if got := s.Due(first.Add(-time.Nanosecond), 10); len(got) != 0 {
		t.Fatalf("due before its time: %v", got)
	}
	if got := s.Due(first, 10); len(got) != 1 {
		t.Fatalf("due at its time: %v, want the check", got)
	}
	if got := s.Due(first.Add(10*time.Second), 10); len(got) != 0 {
		t.Fatalf("a running check was due again: %v", got)
	}
	s.Done(sp.Key, Result{Status: catalog.StatusPassing}, first.Add(time.Second))
	if next := s.NextWake(); !next.Equal(first.Add(2 * time.Second)) {
		t.Fatalf("next probe at %v, want one interval after the last start %v", next, first.Add(2*time.Second))
	}
	short := httpSpec("fast", 10*time.Millisecond) // Consul raises intervals to 1 s
	s.Sync([]Spec{short}, t0)
	at := dueAt(t, s, t0)
	s.Due(at, 10)
	s.Done(short.Key, Result{Status: catalog.StatusPassing}, at)
	if next := s.NextWake(); next.Sub(at) != time.Second {
		t.Fatalf("interval of 10ms ran after %v, want the 1s floor", next.Sub(at))
	}
}

func TestDueIsBounded(t *testing.T) {
	s := NewSchedule(Options{})
	var specs []Spec
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		specs = append(specs, httpSpec(id, time.Second))
	}
	s.Sync(specs, t0)
	now := t0.Add(time.Second)
	if got := s.Due(now, 2); len(got) != 2 {
		t.Fatalf("Due(limit 2) = %d checks", len(got))
	}
	if got := s.Due(now, 10); len(got) != 3 {
		t.Fatalf("the rest: %d checks, want 3", len(got))
	}
	limited := NewSchedule(Options{MaxChecks: 3})
	if dropped := limited.Sync(specs, t0); dropped != 2 || limited.Len() != 3 {
		t.Fatalf("MaxChecks 3: dropped %d, holds %d", dropped, limited.Len())
	}
}

func TestWriteOnlyOnChange(t *testing.T) {
	s := NewSchedule(Options{})
	sp := httpSpec("c", time.Second)
	s.Sync([]Spec{sp}, t0)
	ok200 := Result{Status: catalog.StatusPassing, Output: "HTTP GET http://x/health: 200 OK Output: fine"}
	writes := 0
	now := t0
	probe := func(r Result) (Update, bool) {
		now = now.Add(time.Second)
		s.Due(now, 10)
		u, ok := s.Done(sp.Key, r, now)
		if ok {
			writes++
		}
		return u, ok
	}
	if u, ok := probe(ok200); !ok || u.Status != catalog.StatusPassing || u.Output != ok200.Output {
		t.Fatalf("first passing result: %+v %v, want a write of it", u, ok)
	}
	for i := 0; i < 20; i++ {
		probe(ok200)
	}
	now = now.Add(DefaultOptions.OutputDefer) // no deferral window applies to an unchanged result
	probe(ok200)
	if writes != 1 {
		t.Fatalf("%d writes for 22 identical results, want 1", writes)
	}
	if u, ok := probe(Result{Status: catalog.StatusWarning, Output: "429"}); !ok || u.Status != catalog.StatusWarning {
		t.Fatalf("status change not written: %+v %v", u, ok)
	}
	// An output-only change waits for OutputDefer (Consul's check_update_interval).
	if _, ok := probe(Result{Status: catalog.StatusWarning, Output: "429 again"}); ok {
		t.Fatal("an output-only change was written at once")
	}
	now = now.Add(DefaultOptions.OutputDefer)
	if u, ok := probe(Result{Status: catalog.StatusWarning, Output: "429 again"}); !ok || u.Output != "429 again" {
		t.Fatalf("output-only change after the deferral: %+v %v, want written", u, ok)
	}
	// What the catalog says (read back) is what the runner compares with.
	s.Sync([]Spec{{Key: sp.Key, ServiceID: sp.ServiceID, Type: sp.Type, Def: sp.Def, Rev: 99,
		Current: Result{Status: catalog.StatusCritical, Output: "someone else"}}}, now)
	if u, ok := probe(Result{Status: catalog.StatusWarning, Output: "429 again"}); !ok || u.Status != catalog.StatusWarning {
		t.Fatalf("after the catalog changed under it: %+v %v, want the runner's status written back", u, ok)
	}
	s.Failed(sp.Key)
	if _, ok := probe(Result{Status: catalog.StatusWarning, Output: "429 again"}); !ok {
		t.Fatal("after a failed write the same result was not written again")
	}
	long := strings.Repeat("x", 5000)
	if u, _ := probe(Result{Status: catalog.StatusCritical, Output: long}); len(u.Output) > 4096+64 || !strings.Contains(u.Output, "captured 4096 of 5000 bytes") {
		t.Fatalf("output of 5000 bytes written as %d bytes", len(u.Output))
	}
}

func TestThresholds(t *testing.T) {
	s := NewSchedule(Options{})
	sp := httpSpec("c", time.Second)
	sp.Def.SuccessBeforePassing, sp.Def.FailuresBeforeCritical = 2, 3
	sp.Current = Result{Status: catalog.StatusPassing, Output: "ok"}
	s.Sync([]Spec{sp}, t0)
	now := t0
	run := func(st string) bool {
		now = now.Add(time.Second)
		s.Due(now, 10)
		_, ok := s.Done(sp.Key, Result{Status: st, Output: st}, now)
		return ok
	}
	// Counters start at their thresholds (as Consul's), so the first result counts.
	if !run(catalog.StatusCritical) {
		t.Fatal("first critical result after start not written")
	}
	if run(catalog.StatusPassing) {
		t.Fatal("passing written after 1 success, want 2 in a row")
	}
	if !run(catalog.StatusPassing) {
		t.Fatal("passing not written after 2 successes")
	}
	if run(catalog.StatusCritical) || run(catalog.StatusCritical) {
		t.Fatal("critical written before 3 failures in a row")
	}
	if !run(catalog.StatusCritical) {
		t.Fatal("critical not written after 3 failures")
	}
}

func TestTTLExpiry(t *testing.T) {
	s := NewSchedule(Options{})
	k := Key{Node: "m0", CheckID: "t"}
	sp := Spec{Key: k, ServiceID: "web", Type: TypeTTL, Def: catalog.CheckDefinition{TTL: catalog.Duration(10 * time.Second)},
		Current: Result{Status: catalog.StatusPassing, Output: "fine"}, Rev: 5}
	s.Sync([]Spec{sp}, t0)
	if got := s.Due(t0.Add(time.Hour), 10); len(got) != 0 {
		t.Fatalf("a TTL check was probed: %v", got)
	}
	if next := s.NextWake(); !next.Equal(t0.Add(10 * time.Second)) {
		t.Fatalf("TTL deadline %v, want %v", next, t0.Add(10*time.Second))
	}
	s.Touch(k, t0.Add(8*time.Second)) // a pass that changed nothing re-arms it
	if got := s.Expired(t0.Add(15 * time.Second)); len(got) != 0 {
		t.Fatalf("expired 7s after a touch with a TTL of 10s: %v", got)
	}
	got := s.Expired(t0.Add(18 * time.Second))
	want := Update{Key: k, Result: Result{Status: catalog.StatusCritical, Output: "TTL expired (last output before timeout follows): fine"}}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("expiry = %+v, want %+v", got, want)
	}
	if again := s.Expired(t0.Add(time.Hour)); len(again) != 0 {
		t.Fatalf("expired twice: %v", again)
	}
	if !s.NextWake().IsZero() {
		t.Fatalf("an expired TTL check still wakes the runner at %v", s.NextWake())
	}
}

func TestReaper(t *testing.T) {
	s := NewSchedule(Options{ReapRetry: 5 * time.Second})
	sp := httpSpec("c", time.Second)
	sp.Def.DeregisterCriticalServiceAfter = catalog.Duration(30 * time.Second)
	sp.Current = Result{Status: catalog.StatusPassing}
	s.Sync([]Spec{sp}, t0)
	if got := s.Reap(t0.Add(time.Hour)); len(got) != 0 {
		t.Fatalf("a passing service was reaped: %v", got)
	}
	s.Due(t0.Add(2*time.Second), 10)
	s.Done(sp.Key, Result{Status: catalog.StatusCritical}, t0.Add(2*time.Second))
	if got := s.Reap(t0.Add(31 * time.Second)); len(got) != 0 {
		t.Fatalf("reaped after 29s critical: %v", got)
	}
	if next := s.NextWake(); next.After(t0.Add(32 * time.Second)) {
		t.Fatalf("next wake %v is after the reap time", next)
	}
	got := s.Reap(t0.Add(32 * time.Second))
	if len(got) != 1 || got[0] != (ServiceRef{Node: "m0", ServiceID: "web"}) {
		t.Fatalf("reap after 30s critical = %v, want web on m0", got)
	}
	if again := s.Reap(t0.Add(33 * time.Second)); len(again) != 0 {
		t.Fatalf("asked again before the retry time: %v", again)
	}
	if again := s.Reap(t0.Add(37 * time.Second)); len(again) != 1 {
		t.Fatalf("not asked again after the retry time: %v", again)
	}
	// A check that turns passing stops the clock.
	s.Due(t0.Add(40*time.Second), 10)
	s.Done(sp.Key, Result{Status: catalog.StatusPassing}, t0.Add(40*time.Second))
	if got := s.Reap(t0.Add(time.Hour)); len(got) != 0 {
		t.Fatalf("reaped after the check passed again: %v", got)
	}
}

func TestSyncRestartsChangedChecks(t *testing.T) {
	s := NewSchedule(Options{})
	sp := httpSpec("c", time.Second)
	serf := Spec{Key: Key{Node: "m0", CheckID: catalog.SerfCheckID}, Type: "", Current: Result{Status: catalog.StatusPassing}}
	udp := Spec{Key: Key{Node: "m0", CheckID: "u"}, Type: "udp", Def: catalog.CheckDefinition{UDP: "x:1", Interval: catalog.Duration(time.Second)}}
	s.Sync([]Spec{sp, serf, udp}, t0)
	if s.Len() != 1 {
		t.Fatalf("holds %d checks, want only the HTTP one (serfHealth and udp are not run)", s.Len())
	}
	s.Due(t0.Add(time.Second), 10)
	changed := sp
	changed.Def.HTTP = "http://y/health"
	s.Sync([]Spec{changed}, t0.Add(time.Second))
	if got := s.Due(t0.Add(2*time.Second), 10); len(got) != 1 || got[0].Def.HTTP != "http://y/health" {
		t.Fatalf("after the definition changed: %v, want the new definition due", got)
	}
	s.Sync(nil, t0)
	if s.Len() != 0 {
		t.Fatal("a deregistered check was kept")
	}
	if _, ok := s.Done(sp.Key, Result{Status: catalog.StatusPassing}, t0); ok {
		t.Fatal("a result of a deregistered check was written")
	}
}
