// Package compactor decides when a member compacts its key history on its
// own (etcd's --auto-compaction-mode and --auto-compaction-retention) and at
// which revision, with etcd 3.7.3's schedule.
//
// The package is pure: time arrives as an argument, the store's revision is
// handed in, and the compaction itself is the caller's (server proposes it
// through raft like a client's Compact). A Schedule is driven by one
// goroutine:
//
//	s.Observe(rev)
//	loop: wait s.Interval(); if leader { if r, ok := s.Due(now, rev); ok { compact(r); s.Done(now, r, ok) } }; s.Observe(rev)
package compactor

import (
	"fmt"
	"strconv"
	"time"
)

// The two modes of --auto-compaction-mode.
const (
	// ModePeriodic keeps a window of time: the history older than the
	// retention is compacted (etcd's default mode).
	ModePeriodic = "periodic"
	// ModeRevision keeps a number of revisions behind the current one.
	ModeRevision = "revision"
)

// PolicyError is the error of ParseRetention; its text is etcd's where
// etcd has one.
type PolicyError struct{ Err error }

// Error returns the message, etcd's text where etcd has one.
func (e *PolicyError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error (a time.ParseDuration error, say).
func (e *PolicyError) Unwrap() error { return e.Err }

func policyError(format string, args ...any) error {
	return &PolicyError{Err: fmt.Errorf(format, args...)}
}

// Policy is a parsed --auto-compaction-mode and --auto-compaction-retention.
type Policy struct {
	// Mode is ModePeriodic or ModeRevision.
	Mode string
	// Period is the periodic mode's retention window.
	Period time.Duration
	// Revisions is the revision mode's retention: how many revisions are
	// kept behind the current one.
	Revisions int64
}

// Enabled reports whether the policy compacts at all (a retention of 0,
// the default, turns auto compaction off).
func (p Policy) Enabled() bool { return p.Period != 0 || p.Revisions != 0 }

// ParseRetention parses the two flags as etcd 3.7.3 does: an empty mode is
// refused ("undefined auto-compaction-mode"), an empty retention means "0".
// A bare non-negative integer is hours in periodic mode and revisions in
// revision mode; anything else must be a Go duration ("30m", "1h30m"). In
// revision mode a duration counts its nanoseconds as revisions, as etcd
// does. Unlike etcd, which then compacts in a busy loop, a negative
// retention is refused.
func ParseRetention(mode, retention string) (Policy, error) {
	switch mode {
	case ModePeriodic, ModeRevision:
	case "":
		return Policy{}, policyError("undefined auto-compaction-mode")
	default:
		return Policy{}, policyError("unknown auto-compaction-mode %q", mode)
	}
	if retention == "" {
		retention = "0"
	}
	var d time.Duration
	if n, err := strconv.Atoi(retention); err == nil && n >= 0 {
		d = time.Duration(n)
		if mode == ModePeriodic {
			if d > maxHours {
				return Policy{}, policyError("--auto-compaction-retention %q is too long", retention)
			}
			d *= time.Hour
		}
	} else {
		d, err = time.ParseDuration(retention)
		if err != nil {
			return Policy{}, policyError("error parsing CompactionRetention: %w", err)
		}
	}
	if d < 0 {
		return Policy{}, policyError("--auto-compaction-retention must not be negative, not %q", retention)
	}
	if mode == ModeRevision {
		return Policy{Mode: mode, Revisions: int64(d)}, nil
	}
	if d != 0 && d < retryDivisor {
		// etcd divides by a tenth of the period, which is then zero: it panics.
		return Policy{}, policyError("--auto-compaction-retention %q is shorter than %dns", retention, retryDivisor)
	}
	return Policy{Mode: mode, Period: d}, nil
}

// maxHours is the largest bare hour count that fits a time.Duration.
const maxHours = time.Duration(1<<63-1) / time.Hour
