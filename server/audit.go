package server

import (
	"context"
	"fmt"

	"github.com/synod-db/synod/audit"
	"github.com/synod-db/synod/etcdapi"
)

// openAudit opens --audit-log if it is set, so that a bad path fails the
// start; the log's drops are exported as synod_audit_dropped_entries_total.
func (m *Member) openAudit() error {
	if m.cfg.AuditLog == "" {
		return nil
	}
	l, err := audit.Open(audit.Config{
		Path: m.cfg.AuditLog, MaxSizeMB: m.cfg.AuditLogMaxSize, MaxBackups: m.cfg.AuditLogMaxBackups,
		Identity: auditIdentity,
		OnError:  func(err error) { m.log.Warn("audit log write failed; entries dropped", "err", err) },
	})
	if err != nil {
		return fmt.Errorf("%w: --audit-log: %w", ErrConfig, err)
	}
	m.audit = l
	return nil
}

// registerAuditMetrics exports the audit log's counters (when it is on).
func (m *Member) registerAuditMetrics() {
	if m.audit == nil {
		return
	}
	m.metrics.CounterFunc("synod_audit_dropped_entries_total",
		"Audit log entries lost because the audit queue was full or a write failed.",
		func() float64 { return float64(m.audit.Dropped()) })
	m.metrics.CounterFunc("synod_audit_written_lines_total",
		"Lines written to the audit log.", func() float64 { return float64(m.audit.Written()) })
}

// closeAudit flushes and closes the audit log, after the client server
// has stopped so no entry is lost.
func (m *Member) closeAudit() {
	if m.audit == nil {
		return
	}
	if err := m.audit.Close(); err != nil {
		m.log.Error("close audit log", "err", err)
	}
}

// auditIdentity names the caller in the audit log: the user its token or
// certificate identified it as (etcdapi.UserFromContext, auth on), else the
// common name of its verified client certificate, else "".
func auditIdentity(ctx context.Context) string {
	if u, ok := etcdapi.UserFromContext(ctx); ok {
		return u
	}
	return audit.CertIdentity(ctx)
}
