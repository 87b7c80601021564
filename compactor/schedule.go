package compactor

import "time"

// RevisionInterval is how often revision mode looks at the current
// revision (etcd's fixed 5 minutes).
const RevisionInterval = 5 * time.Minute

// retryDivisor splits periodic mode's interval (at most an hour) into the
// steps at which it samples the revision and retries (etcd: a tenth).
const retryDivisor = 10

// Schedule decides, tick by tick, whether to compact and at which revision.
// It is not safe for concurrent use: one goroutine drives it (see the
// package documentation).
type Schedule interface {
	// Interval is the wait before the next tick.
	Interval() time.Duration
	// Observe records the store's revision at the start of a wait.
	Observe(rev int64)
	// Due is called at a tick on the leader only, with the clock's time and
	// the store's revision; it returns the revision to compact, if any.
	Due(now time.Time, rev int64) (int64, bool)
	// Done reports the outcome of compacting at rev: ok is true when it
	// succeeded or the revision was already compacted (not an error, as in
	// etcd). A failure is retried at a later tick.
	Done(now time.Time, rev int64, ok bool)
}

// New returns p's schedule, started at start. revisionInterval replaces
// RevisionInterval when positive (tests shorten it). New returns nil when
// p is not Enabled.
func New(p Policy, start time.Time, revisionInterval time.Duration) Schedule {
	switch {
	case !p.Enabled():
		return nil
	case p.Mode == ModeRevision:
		if revisionInterval <= 0 {
			revisionInterval = RevisionInterval
		}
		return &revision{retention: p.Revisions, interval: revisionInterval}
	}
	step := min(p.Period, time.Hour) / retryDivisor
	return &periodic{
		period:      p.Period,
		step:        step,
		window:      int(p.Period/step) + 1,
		base:        p.Period,
		lastSuccess: start,
	}
}

// periodic is etcd's periodic compactor. It samples the revision every
// step (a tenth of the period, or of an hour for longer periods) and keeps
// the last window samples, so the oldest sample is about one period old.
// The first compaction waits a whole period after start; after that it
// compacts at the oldest sample whenever the last success is at least
// min(period, 1h) ago, retrying failures every step, and never twice at
// the same revision.
type periodic struct {
	period, step time.Duration
	window       int
	revs         []int64
	base         time.Duration // wait since lastSuccess: period at first, then min(period, 1h)
	lastSuccess  time.Time
	lastRev      int64
}

func (p *periodic) Interval() time.Duration { return p.step }

func (p *periodic) Observe(rev int64) {
	p.revs = append(p.revs, rev)
	if len(p.revs) > p.window {
		p.revs = p.revs[1:]
	}
}

func (p *periodic) Due(now time.Time, _ int64) (int64, bool) {
	if len(p.revs) == 0 {
		return 0, false
	}
	rev := p.revs[0]
	if now.Sub(p.lastSuccess) < p.base || rev == p.lastRev {
		return 0, false
	}
	p.base = min(p.period, time.Hour)
	return rev, true
}

func (p *periodic) Done(now time.Time, rev int64, ok bool) {
	if ok {
		p.lastRev, p.lastSuccess = rev, now
	}
}

// revision is etcd's revision compactor: every interval, it compacts at
// the current revision minus the retention, unless that is not positive
// or was the last revision it compacted at.
type revision struct {
	retention int64
	interval  time.Duration
	lastRev   int64
}

func (r *revision) Interval() time.Duration { return r.interval }

func (r *revision) Observe(int64) {}

func (r *revision) Due(_ time.Time, rev int64) (int64, bool) {
	target := rev - r.retention
	if target <= 0 || target == r.lastRev {
		return 0, false
	}
	return target, true
}

func (r *revision) Done(_ time.Time, rev int64, ok bool) {
	if ok {
		r.lastRev = rev
	}
}
