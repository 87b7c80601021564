package healthcheck

import (
	"fmt"
	"time"

	"github.com/synod-db/synod/catalog"
)

// Done takes a probe's result (at now): after Consul's thresholds
// (SuccessBeforePassing passing-or-warning results in a row before it
// counts, FailuresBeforeCritical critical ones), it returns the write to
// make, if any. A status change is written at once; an output-only change
// at most once per OutputDefer, as Consul's agent defers them; no change,
// nothing.
func (s *Schedule) Done(k Key, r Result, now time.Time) (Update, bool) {
	e, ok := s.entries[k]
	if !ok {
		return Update{}, false // deregistered while its probe ran
	}
	e.running = false
	if r.Status == catalog.StatusCritical {
		e.failures++
		e.successes = 0
		if e.failures < threshold(e.spec.Def.FailuresBeforeCritical) {
			return Update{}, false
		}
	} else {
		e.successes++
		e.failures = 0
		if e.successes < threshold(e.spec.Def.SuccessBeforePassing) {
			return Update{}, false
		}
	}
	return s.propose(e, r, now)
}

// propose returns the write that sets e to r, if the catalog does not hold
// it already.
func (s *Schedule) propose(e *entry, r Result, now time.Time) (Update, bool) {
	r.Output = catalog.TruncateOutput(r.Output, s.opts.OutputBytes)
	if r == e.known {
		return Update{}, false
	}
	if r.Status == e.known.Status && !e.lastWrite.IsZero() && now.Sub(e.lastWrite) < s.opts.OutputDefer {
		return Update{}, false
	}
	e.lastWrite = now
	s.learn(e, r, now)
	return Update{Key: e.spec.Key, Result: r}, true
}

// Failed forgets what the runner believed the catalog held for k after a
// write of it failed, so that the next result writes again.
func (s *Schedule) Failed(k Key) {
	if e, ok := s.entries[k]; ok {
		e.known, e.lastWrite = Result{}, time.Time{}
	}
}

// Touch re-arms a TTL check's timer: its agent was told its status (Consul's
// /v1/agent/check/pass|warn|fail|update).
func (s *Schedule) Touch(k Key, now time.Time) {
	if e, ok := s.entries[k]; ok && e.spec.Type == TypeTTL {
		e.deadline = now.Add(time.Duration(e.spec.Def.TTL))
		e.expired = false
	}
}

// Expired returns the writes of the TTL checks whose TTL has passed since
// their last update: critical, with Consul's "TTL expired" output (and the
// last output before it).
func (s *Schedule) Expired(now time.Time) []Update {
	var out []Update
	for _, e := range s.entries {
		if e.spec.Type != TypeTTL || e.expired || now.Before(e.deadline) {
			continue
		}
		e.expired = true
		r := Result{Status: catalog.StatusCritical, Output: expiredOutput(e.known.Output)}
		if u, ok := s.propose(e, r, now); ok {
			out = append(out, u)
		}
	}
	return out
}

func expiredOutput(last string) string {
	if last == "" {
		return "TTL expired"
	}
	return fmt.Sprintf("TTL expired (last output before timeout follows): %s", last)
}

// Reap returns the service instances to deregister: those with a check
// that has been critical for its DeregisterCriticalServiceAfter (Consul's
// reaper). Each is returned again only after ReapRetry, should the
// deregistration fail.
func (s *Schedule) Reap(now time.Time) []ServiceRef {
	var out []ServiceRef
	seen := map[ServiceRef]bool{}
	for _, e := range s.entries {
		at, ok := s.reapTime(e)
		if !ok || now.Before(at) {
			continue
		}
		e.reapAt = now.Add(s.opts.ReapRetry)
		ref := ServiceRef{Node: e.spec.Node, ServiceID: e.spec.ServiceID}
		if !seen[ref] {
			seen[ref] = true
			out = append(out, ref)
		}
	}
	return out
}

// reapTime is when e's service is due for deregistration, if it is to be.
func (s *Schedule) reapTime(e *entry) (time.Time, bool) {
	after := time.Duration(e.spec.Def.DeregisterCriticalServiceAfter)
	if after <= 0 || e.spec.ServiceID == "" || e.critSince.IsZero() {
		return time.Time{}, false
	}
	at := e.critSince.Add(after)
	if e.reapAt.After(at) {
		at = e.reapAt
	}
	return at, true
}

// NextWake is the earliest time something is due (a probe, a TTL expiry,
// a reap), or the zero time when nothing is.
func (s *Schedule) NextWake() time.Time {
	var next time.Time
	consider := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	for _, e := range s.entries {
		switch {
		case e.spec.Type == TypeTTL && !e.expired:
			consider(e.deadline)
		case e.spec.Type != TypeTTL && !e.running:
			consider(e.next)
		}
		if at, ok := s.reapTime(e); ok {
			consider(at)
		}
	}
	return next
}
