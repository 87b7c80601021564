package server

import (
	"log/slog"
	"time"

	"github.com/synod-db/synod/raftnode"
	"github.com/synod-db/synod/statemachine"
)

// timedApplier is the state machine with etcd's --warning-apply-duration:
// a run of committed entries whose apply takes longer than warnAfter is
// logged at warn level, as etcd logs "apply request took too long".
type timedApplier struct {
	*statemachine.Machine
	warnAfter time.Duration
	log       *slog.Logger
}

// newTimedApplier wraps sm with the warning threshold d (etcd's default
// when unset).
func newTimedApplier(sm *statemachine.Machine, d time.Duration, log *slog.Logger) timedApplier {
	if d <= 0 {
		d = DefaultWarningApplyDuration
	}
	return timedApplier{Machine: sm, warnAfter: d, log: log}
}

// Apply applies reqs with the state machine and warns if that was slow.
func (a timedApplier) Apply(reqs []raftnode.Request, res []raftnode.Result) error {
	start := time.Now()
	err := a.Machine.Apply(reqs, res)
	if took := time.Since(start); took > a.warnAfter && len(reqs) > 0 {
		a.log.Warn("apply request took too long", "took", took, "expected-duration", a.warnAfter,
			"entries", len(reqs), "first-index", reqs[0].Index)
	}
	return err
}
