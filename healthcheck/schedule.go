package healthcheck

import (
	"fmt"
	"hash/fnv"
	"reflect"
	"sort"
	"time"

	"github.com/synod-db/synod/catalog"
)

// entry is the schedule's state of one check.
type entry struct {
	spec      Spec
	next      time.Time // the next probe is due (probed types)
	running   bool      // a probe is in flight
	deadline  time.Time // a TTL check expires (TTL type)
	expired   bool      // the TTL expiry was handled; a Touch re-arms it
	known     Result    // the status in the catalog, as last read or written
	lastWrite time.Time // when the runner last wrote this check
	critSince time.Time // when it was first seen critical; zero when it is not
	reapAt    time.Time // no deregistration is asked before this
	successes int       // consecutive passing/warning results
	failures  int       // consecutive critical results
}

// Schedule is the pure core of one member's runner: the checks it runs,
// when each is due, and what to write. It is not safe for concurrent use;
// the runner's loop owns it.
type Schedule struct {
	opts    Options
	entries map[Key]*entry
}

// NewSchedule returns an empty schedule.
func NewSchedule(opts Options) *Schedule {
	return &Schedule{opts: opts.withDefaults(), entries: map[Key]*entry{}}
}

// Len is the number of checks the schedule holds.
func (s *Schedule) Len() int { return len(s.entries) }

// Sync makes the schedule hold exactly specs (those of a type the runner
// runs, at most MaxChecks, the first by key): new checks are scheduled, a
// changed definition starts its check again, and a newer catalog status
// (a higher Rev) becomes the known status. It returns how many checks were
// left out over MaxChecks.
func (s *Schedule) Sync(specs []Spec, now time.Time) (dropped int) {
	var keep []Spec
	for _, sp := range specs {
		if Runs(sp.Type) && !(sp.CheckID == catalog.SerfCheckID && sp.ServiceID == "") {
			keep = append(keep, sp)
		}
	}
	sort.Slice(keep, func(i, j int) bool { return keyLess(keep[i].Key, keep[j].Key) })
	if len(keep) > s.opts.MaxChecks {
		dropped, keep = len(keep)-s.opts.MaxChecks, keep[:s.opts.MaxChecks]
	}
	seen := make(map[Key]bool, len(keep))
	for _, sp := range keep {
		seen[sp.Key] = true
		s.syncOne(sp, now)
	}
	for k := range s.entries {
		if !seen[k] {
			delete(s.entries, k)
		}
	}
	return dropped
}

func (s *Schedule) syncOne(sp Spec, now time.Time) {
	e, ok := s.entries[sp.Key]
	if ok && e.spec.Type == sp.Type && e.spec.ServiceID == sp.ServiceID && reflect.DeepEqual(e.spec.Def, sp.Def) {
		if sp.Rev > e.spec.Rev {
			e.spec.Rev, e.spec.Current = sp.Rev, sp.Current
			s.learn(e, sp.Current, now)
		}
		return
	}
	e = &entry{spec: sp}
	s.learn(e, sp.Current, now)
	if sp.Type == TypeTTL {
		e.deadline = now.Add(time.Duration(sp.Def.TTL))
	} else {
		e.next = now.Add(stagger(sp.Key, s.interval(sp)))
	}
	e.successes, e.failures = threshold(sp.Def.SuccessBeforePassing), threshold(sp.Def.FailuresBeforeCritical)
	s.entries[sp.Key] = e
}

// learn records the status the catalog holds (read or written).
func (s *Schedule) learn(e *entry, r Result, now time.Time) {
	e.known = r
	switch {
	case r.Status != catalog.StatusCritical:
		e.critSince = time.Time{}
	case e.critSince.IsZero():
		e.critSince = now
	}
}

func keyLess(a, b Key) bool {
	if a.Node != b.Node {
		return a.Node < b.Node
	}
	return a.CheckID < b.CheckID
}

// stagger spreads the first probes of checks registered together over
// their interval, deterministically (Consul staggers them at random).
func stagger(k Key, interval time.Duration) time.Duration {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00%s", k.Node, k.CheckID)
	return time.Duration(h.Sum64() % uint64(interval))
}

func threshold(n int) int {
	if n < 1 {
		return 1
	}
	return n
}

// interval is a check's probe interval, raised to MinInterval as Consul
// raises it.
func (s *Schedule) interval(sp Spec) time.Duration {
	if d := time.Duration(sp.Def.Interval); d > s.opts.MinInterval {
		return d
	}
	return s.opts.MinInterval
}

// Timeout is a probe's timeout: the check's own (10 s when it names
// none), at most MaxTimeout.
func (s *Schedule) Timeout(sp Spec) time.Duration {
	d := time.Duration(sp.Def.Timeout)
	if d <= 0 {
		d = s.opts.DefaultTimeout
	}
	return min(d, s.opts.MaxTimeout)
}

// Due returns at most limit probed checks whose time has come, the most
// overdue first, marks them running and schedules their next probe one
// interval from now.
func (s *Schedule) Due(now time.Time, limit int) []Spec {
	var due []*entry
	for _, e := range s.entries {
		if e.spec.Type != TypeTTL && !e.running && !now.Before(e.next) {
			due = append(due, e)
		}
	}
	sort.Slice(due, func(i, j int) bool {
		if !due[i].next.Equal(due[j].next) {
			return due[i].next.Before(due[j].next)
		}
		return keyLess(due[i].spec.Key, due[j].spec.Key)
	})
	var out []Spec
	for _, e := range due[:min(len(due), max(limit, 0))] {
		e.running = true
		e.next = now.Add(s.interval(e.spec))
		out = append(out, e.spec)
	}
	return out
}
