package server

import (
	"fmt"
	"path/filepath"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/synod-db/synod/membership"
	"github.com/synod-db/synod/statemachine"
	"github.com/synod-db/synod/watch"
)

// openStateMachine opens the member's state machine on its database and
// the watch hub on its keyspace: the Machine applies, the member only
// wires its hooks (the transport follows the membership).
func (m *Member) openStateMachine() error {
	sm, err := statemachine.Open(statemachine.Config{
		DB: m.db, Clock: time.Now, Logger: m.log, MaxLearners: m.cfg.MaxLearners,
		OnConfChange: m.afterChange, OnRestore: m.syncPeers,
		ObserveCommit: func(d time.Duration) { m.metrics.BackendCommit.Observe(d.Seconds()) },
		CompactHashes: m.cfg.CompactHashCheck, CompactionBatch: m.cfg.CompactionBatchLimit,
		// A snapshot restore's sstables, next to the database (diskopts.go).
		FS: m.cfg.FS, IngestDir: filepath.Join(m.cfg.DataDir, "db.ingest"),
	})
	if err != nil {
		return err
	}
	m.sm = sm
	m.hub = watch.NewHub(sm.KV(), watch.Config{MaxWatchers: m.cfg.MaxWatchers, ProgressInterval: m.cfg.WatchProgressNotifyInterval})
	sm.SetWatchers(m.hub)
	return nil
}

// afterChange points the transport at the new membership and stops this
// member when it was removed (statemachine.Config.OnConfChange).
func (m *Member) afterChange(c membership.Change) {
	switch {
	case c.Type == raftpb.ConfChangeType_ConfChangeRemoveNode && c.ID == m.id:
		m.removedFromCluster()
	case c.Type == raftpb.ConfChangeType_ConfChangeRemoveNode:
		m.tr.RemovePeer(c.ID)
	case c.Member != nil && c.ID != m.id:
		if cur, ok := m.sm.Members().Get(c.ID); ok {
			m.tr.AddPeer(c.ID, cur.PeerURLs)
		}
	}
	m.log.Info("applied a configuration change", "type", c.Type.String(), "member-id", fmt.Sprintf("%x", c.ID),
		"promote", c.Promote)
}
