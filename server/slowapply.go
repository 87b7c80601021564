package server

import (
	"log/slog"
	"time"

	"github.com/synod-db/synod/raftnode"
)

// timedApplier is the applier with etcd's --warning-apply-duration: a
// batch of committed entries whose apply takes longer than warnAfter is
// logged at warn level, as etcd logs "apply request took too long".
type timedApplier struct {
	applier
	warnAfter time.Duration
	log       *slog.Logger
}

// newTimedApplier wraps m's applier with the warning threshold of m's
// configuration (etcd's default when unset).
func newTimedApplier(m *Member) timedApplier {
	d := m.cfg.WarningApplyDuration
	if d <= 0 {
		d = DefaultWarningApplyDuration
	}
	return timedApplier{applier: applier{m}, warnAfter: d, log: m.log}
}

// Apply applies reqs with the applier and warns if that was slow.
func (a timedApplier) Apply(reqs []raftnode.Request, res []raftnode.Result) error {
	start := time.Now()
	err := a.applier.Apply(reqs, res)
	if took := time.Since(start); took > a.warnAfter && len(reqs) > 0 {
		a.log.Warn("apply request took too long", "took", took, "expected-duration", a.warnAfter,
			"entries", len(reqs), "first-index", reqs[0].Index)
	}
	return err
}
