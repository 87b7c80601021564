package server

import (
	"context"
	"net/http"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/synod-db/synod/etcdhttp"
	"github.com/synod-db/synod/metrics"
)

// observeStorage hooks the member's metric set into the raft log and the
// state store; call it once both are open.
func (m *Member) observeStorage() {
	m.logStore.ObserveSync(func(d time.Duration) { m.metrics.WALFsync.Observe(d.Seconds()) })
}

// registerGauges publishes, under etcd's metric names, the values the
// member already tracks; they are read at scrape time.
func (m *Member) registerGauges() {
	ms, n := m.metrics, m.node
	ms.GaugeFunc("etcd_server_has_leader", "Whether or not a leader exists. 1 is existence, 0 is not.",
		func() float64 { return metrics.Bool(n.Leader() != 0) })
	ms.GaugeFunc("etcd_server_is_leader", "Whether or not this member is a leader. 1 if is, 0 otherwise.",
		func() float64 { return metrics.Bool(n.IsLeader()) })
	ms.GaugeFunc("etcd_server_is_learner", "Whether or not this member is a learner. 1 if is, 0 otherwise.",
		func() float64 { return metrics.Bool(m.IsLearner()) })
	ms.CounterFunc("etcd_server_leader_changes_seen_total", "The number of leader changes seen.",
		func() float64 { return float64(n.Stats().LeaderChanges) })
	ms.GaugeFunc("etcd_server_proposals_committed_total", "The total number of consensus proposals committed.",
		func() float64 { return float64(n.CommitIndex()) })
	ms.GaugeFunc("etcd_server_proposals_applied_total", "The total number of consensus proposals applied.",
		func() float64 { return float64(n.AppliedIndex()) })
	ms.GaugeFunc("etcd_server_proposals_pending", "The current number of pending proposals to commit.",
		func() float64 { return float64(n.Stats().ProposalsPending) })
	ms.CounterFunc("etcd_server_proposals_failed_total", "The total number of failed proposals seen.",
		func() float64 { return float64(n.Stats().ProposalsFailed) })
	ms.GaugeFunc("etcd_mvcc_db_total_size_in_bytes", "Total size of the underlying database physically allocated in bytes.",
		func() float64 { return float64(m.dbSize.Load()) })
	ms.GaugeFunc("etcd_mvcc_db_total_size_in_use_in_bytes", "Total size of the underlying database logically in use in bytes.",
		func() float64 { return float64(m.dbInUse.Load()) })
	ms.GaugeFunc("etcd_debugging_mvcc_current_revision", "The current revision of store.",
		func() float64 { return float64(m.sm.KV().Rev()) })
	ms.GaugeFunc("etcd_debugging_mvcc_compact_revision", "The revision of the last compaction in store.",
		func() float64 { return float64(m.sm.KV().CompactRev()) })
	ms.GaugeFunc("etcd_server_quota_backend_bytes", "Current backend storage quota size in bytes.",
		func() float64 { return float64(m.cfg.QuotaBackendBytes) })
	m.registerPebbleMetrics()
}

// registerPebbleMetrics publishes the figures of both databases that tell
// whether the storage engine is sized right and keeps up: the block cache
// (docs/performance.md: a block cache smaller than the memtable reservation
// caches nothing), memtables, level 0 and the levels below, compaction debt,
// bytes flushed, compacted and written to the WAL, write stalls
// (docs/maintenance.md, "Storage engine metrics").
func (m *Member) registerPebbleMetrics() {
	m.metrics.RegisterPebble(
		metrics.PebbleDB{Name: "state", Metrics: m.db.Metrics, Stalls: m.stalls.state},
		metrics.PebbleDB{Name: "raftlog", Metrics: m.logDB.Metrics, Stalls: m.stalls.log},
	)
}

// httpHandler is the member's HTTP endpoints (package etcdhttp).
func (m *Member) httpHandler() http.Handler {
	return etcdhttp.NewHandler(m, etcdhttp.Options{
		Metrics: m.metrics, EnablePprof: m.cfg.EnablePprof, Timeout: m.requestTimeout(),
		ServerVersion: Version, ClusterVersion: StorageVersion, StorageVersion: StorageVersion,
	})
}

// requestTimeout is etcd's request timeout: 5 s plus two election timeouts.
func (m *Member) requestTimeout() time.Duration { return 5*time.Second + 2*m.cfg.ElectionTimeout }

// HasLeader reports whether the member knows a leader (etcdhttp.Member).
func (m *Member) HasLeader() bool { return m.node.Leader() != 0 }

// IsLearner reports whether this member is a raft learner (etcdhttp.Member).
func (m *Member) IsLearner() bool {
	mem, ok := m.sm.Members().Get(m.id)
	return ok && mem.IsLearner
}

// CheckRead reads one key through the normal read path: after a ReadIndex
// unless serializable (etcdhttp.Member).
func (m *Member) CheckRead(ctx context.Context, serializable bool) error {
	if !serializable {
		if err := m.ReadIndex(ctx); err != nil {
			return err
		}
	}
	_, err := m.sm.KV().Range(ctx, &etcdserverpb.RangeRequest{Key: []byte("health"), KeysOnly: true, Limit: 1})
	return err
}
