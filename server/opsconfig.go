package server

import (
	"fmt"
	"time"

	"github.com/synod-db/synod/compactor"
)

// Operations is the part of Config that operators use to run a cluster
// over time: auto compaction (etcd's --auto-compaction-mode and
// --auto-compaction-retention) and --force-new-cluster.
type Operations struct {
	// AutoCompactionMode is --auto-compaction-mode: compactor.ModePeriodic
	// or compactor.ModeRevision. Empty means periodic (the flag refuses an
	// empty value, as etcd does).
	AutoCompactionMode string
	// AutoCompactionRetention is --auto-compaction-retention as given: a
	// duration ("30m", "1h"), a bare integer (hours in periodic mode,
	// revisions in revision mode), or "0" (the default, off). Empty means "0".
	AutoCompactionRetention string
	// AutoCompactionRevisionInterval replaces revision mode's 5-minute check
	// interval when positive. No flag sets it: it is for tests.
	AutoCompactionRevisionInterval time.Duration
	// ForceNewCluster is --force-new-cluster: a restarted member rewrites
	// the cluster's membership to itself alone, keeping all its data
	// (docs/membership.md). It has no effect on a new data directory.
	ForceNewCluster bool
}

// compactionPolicy parses the auto compaction flags.
func (o *Operations) compactionPolicy() (compactor.Policy, error) {
	mode := o.AutoCompactionMode
	if mode == "" {
		mode = compactor.ModePeriodic
	}
	return compactor.ParseRetention(mode, o.AutoCompactionRetention)
}

func (o *Operations) validate() error {
	if _, err := o.compactionPolicy(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}
