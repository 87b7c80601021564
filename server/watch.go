package server

import (
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/synod-db/synod/watch"
)

// Watchable is the member's watch hub.
func (m *Member) Watchable() *watch.Hub { return m.hub }

// Leader is the ID of the leader this member knows, 0 if none.
func (m *Member) Leader() uint64 { return m.node.Leader() }

// LeaderChanged is closed at the next change of leader.
func (m *Member) LeaderChanged() <-chan struct{} { return m.node.LeaderChanged() }

// notifyWatchers hands the events one applied entry produced to the
// watchers; it never blocks the raft loop.
func (m *Member) notifyWatchers(evs []*mvccpb.Event) {
	if len(evs) > 0 {
		m.hub.Notify(evs[0].Kv.ModRevision, evs)
	}
}
