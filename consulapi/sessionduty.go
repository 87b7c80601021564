package consulapi

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/synod-db/synod/catalog"
	"github.com/synod-db/synod/consulkv"
)

// How often the session duty sweeps: the leader's member often, the
// others (its stand-ins when it cannot) less.
const (
	leaderSweep   = 5 * time.Second
	followerSweep = 15 * time.Second
	// tombstoneTTL is how long a KV tombstone is kept (Consul's default
	// tombstone_ttl); reaping it may move an index back, never forward.
	tombstoneTTL = 15 * time.Minute
	maxReapBatch = 64
)

// RunSessions runs the session duty until ctx ends: when a session ends
// (destroyed on any member, its lease expired, a check it depends on
// critical or gone), the keys it held are released or deleted
// (finishSession). The member that leads raft reacts to each end as its
// watch sees it; every member sweeps now and then for ends nobody handled
// (a crashed member, a lost watch), and the leader's also invalidates
// sessions whose checks failed and reaps old KV tombstones. Every step is
// a compared transaction, so doing one twice, or on two members, is
// harmless.
func (s *Server) RunSessions(ctx context.Context) {
	go s.sweepLoop(ctx)
	for ctx.Err() == nil {
		s.watchEnds(ctx)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (s *Server) leading() bool { return s.cfg.Raft.Leader() == s.cfg.Raft.ID() }

// watchEnds reacts to session deletions and to checks and nodes that
// fail, until a watch fails.
func (s *Server) watchEnds(ctx context.Context) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	ends := s.cfg.Watcher.Watch(wctx, consulkv.SessionPrefix, clientv3.WithPrefix(), clientv3.WithFilterPut())
	checks := s.cfg.Watcher.Watch(wctx, catalog.CheckPrefix, clientv3.WithPrefix())
	nodes := s.cfg.Watcher.Watch(wctx, catalog.NodePrefix, clientv3.WithPrefix(), clientv3.WithFilterPut())
	for {
		var resp clientv3.WatchResponse
		var ok bool
		select {
		case resp, ok = <-ends:
		case resp, ok = <-checks:
		case resp, ok = <-nodes:
		}
		if !ok || resp.Err() != nil {
			return
		}
		if s.leading() {
			s.handleEvents(ctx, resp.Events)
		}
	}
}

func (s *Server) handleEvents(ctx context.Context, events []*clientv3.Event) {
	for _, ev := range events {
		key := string(ev.Kv.Key)
		var err error
		switch {
		case strings.HasPrefix(key, consulkv.SessionPrefix):
			err = s.finishSession(ctx, strings.TrimPrefix(key, consulkv.SessionPrefix))
		case strings.HasPrefix(key, catalog.CheckPrefix) && !checkFailed(ev):
			// a check that passes or warns ends no session
		default: // a node or check event that may end sessions
			if node, ok := catalog.NodeOfKey(key); ok {
				err = s.checkSessions(ctx, node)
			}
		}
		if err != nil {
			s.log.Warn("session duty", "key", key, "err", err)
		}
	}
}

// checkFailed reports whether a check event can end a session: the check
// was removed or is critical.
func checkFailed(ev *clientv3.Event) bool {
	if ev.Type == clientv3.EventTypeDelete {
		return true
	}
	var c catalog.Check
	return json.Unmarshal(ev.Kv.Value, &c) != nil || c.Status == catalog.StatusCritical
}

// checkSessions destroys node's sessions whose node or checks are gone or
// critical, as Consul invalidates them.
func (s *Server) checkSessions(ctx context.Context, node string) error {
	sessions, err := s.liveSessions(ctx)
	if err != nil {
		return err
	}
	var states map[string]string
	read := false
	for _, sess := range sessions {
		if sess.Node != node {
			continue
		}
		if !read {
			st, _, err := s.readNode(ctx, modeConsistent, node)
			if err != nil {
				return err
			}
			states, read = nodeCheckStates(st), true
		}
		if sess.Healthy(states, catalog.StatusCritical) != nil {
			if err := s.destroySession(ctx, sess.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Server) sweepLoop(ctx context.Context) {
	for {
		every := followerSweep
		if s.leading() {
			every = leaderSweep
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
		if err := s.sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("session sweep", "err", err)
		}
	}
}

// sweep finishes every ended session whose shadow is left, and on the
// leader checks every node with sessions and reaps old tombstones.
func (s *Server) sweep(ctx context.Context) error {
	resp, err := s.read(ctx, modeConsistent,
		clientv3.OpGet(consulkv.ShadowPrefix, clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithLimit(maxListKeys)),
		clientv3.OpGet(consulkv.SessionPrefix, clientv3.WithPrefix(), clientv3.WithLimit(maxListKeys)))
	if err != nil {
		return err
	}
	alive := map[string]bool{}
	nodes := map[string]bool{}
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		sess, err := decodeSession(kv)
		if err != nil {
			return err
		}
		alive[sess.ID], nodes[sess.Node] = true, true
	}
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		if id := strings.TrimPrefix(string(kv.Key), consulkv.ShadowPrefix); !alive[id] {
			if err := s.finishSession(ctx, id); err != nil {
				return err
			}
		}
	}
	if !s.leading() {
		return nil
	}
	for node := range nodes {
		if err := s.checkSessions(ctx, node); err != nil {
			return err
		}
	}
	return s.reapTombstones(ctx, time.Now().Add(-tombstoneTTL).Unix())
}

// reapTombstones deletes a batch of tombstones written before the Unix
// time before, each compared on its revision.
func (s *Server) reapTombstones(ctx context.Context, before int64) error {
	resp, err := s.cfg.KV.Get(ctx, consulkv.TombPrefix, clientv3.WithPrefix(), clientv3.WithLimit(maxListKeys))
	if err != nil {
		return err
	}
	var cmps []clientv3.Cmp
	var ops []clientv3.Op
	for _, kv := range resp.Kvs {
		t, err := strconv.ParseInt(string(kv.Value), 10, 64)
		if err == nil && t >= before {
			continue
		}
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(string(kv.Key)), "=", kv.ModRevision))
		ops = append(ops, clientv3.OpDelete(string(kv.Key)))
		if len(ops) == maxReapBatch {
			break
		}
	}
	if len(ops) == 0 {
		return nil
	}
	_, err = s.cfg.KV.Txn(ctx).If(cmps...).Then(ops...).Commit()
	return err
}
