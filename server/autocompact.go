package server

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/synod-db/synod/compactor"
	"github.com/synod-db/synod/mvcc"
)

// startAutoCompaction starts the auto compaction goroutine when the
// configuration asks for it. Every member runs its schedule from its
// start, as etcd's compactor does; only the leader acts on it.
func (m *Member) startAutoCompaction() {
	p, err := m.cfg.compactionPolicy()
	if err != nil || !p.Enabled() { // Validate already refused a bad policy
		return
	}
	s := compactor.New(p, time.Now(), m.cfg.AutoCompactionRevisionInterval)
	m.log.Info("auto compaction enabled", "auto-compaction-mode", p.Mode,
		"auto-compaction-retention", m.cfg.AutoCompactionRetention, "check-interval", s.Interval())
	s.Observe(m.sm.KV().Rev())
	m.bg.Add(1)
	go m.runEvery(s.Interval(), func() { m.autoCompactTick(p, s) })
}

// autoCompactTick is one step of s: on the leader, compact where s says;
// on every member, sample the store's revision for the next steps.
func (m *Member) autoCompactTick(p compactor.Policy, s compactor.Schedule) {
	if m.node.IsLeader() {
		if rev, ok := s.Due(time.Now(), m.sm.KV().Rev()); ok {
			s.Done(time.Now(), rev, m.autoCompact(p, rev, s.Interval()))
		}
	}
	s.Observe(m.sm.KV().Rev())
}

// autoCompact proposes a compaction at rev through raft, as a client's
// Compact, and logs it with etcd's messages. A revision already compacted
// counts as done, as in etcd.
func (m *Member) autoCompact(p compactor.Policy, rev int64, retry time.Duration) bool {
	kind, setting := "periodic", slog.Duration("compact-period", p.Period)
	if p.Mode == compactor.ModeRevision {
		kind, setting = "revision", slog.Int64("revision-compaction-retention", p.Revisions)
	}
	m.log.Info("starting auto "+kind+" compaction", "revision", rev, setting)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), m.requestTimeout())
	defer cancel()
	_, err := m.Propose(ctx, compactor.Request(rev))
	if err != nil && !errors.Is(err, mvcc.ErrCompacted) {
		m.log.Warn("failed auto "+kind+" compaction", "revision", rev, setting, "retry-interval", retry, "err", err)
		return false
	}
	m.log.Info("completed auto "+kind+" compaction", "revision", rev, setting, "took", time.Since(start))
	return true
}
