package raftnode

import (
	"errors"
	"fmt"

	"go.etcd.io/raft/v3/raftpb"
)

// ErrLogBehindState is returned (wrapped, saying by how much and where the
// log is) by New and NewCore when the raft log ends before what the state
// has applied, or before the commit index its own HardState records. In a
// correct run neither can happen: an entry is applied only once its log
// write was synced, and a snapshot install resets the log before it
// restores the state. So the log lost entries it had acknowledged, for
// example to damage in the newest file of its database's write-ahead log,
// which Pebble reads as a torn write and drops with every record after it
// (docs/security.md, "Known limits"). Raft would panic on such a log, or
// worse, vote from a HardState it lost; the member must be replaced.
var ErrLogBehindState = errors.New("raftnode: the raft log has lost entries this member acknowledged")

// checkLogCoversState refuses to start raft over a log that ends before
// the state's applied index or before hs's commit index (both were durable
// in the log once). It runs after recoverSnapshot, so an interrupted
// install, whose log snapshot is ahead of the state, is already finished.
func (c *Core) checkLogCoversState(hs *raftpb.HardState) error {
	last, err := c.cfg.Log.LastIndex()
	if err != nil {
		return fmt.Errorf("raftnode: read last index: %w", err)
	}
	end := max(last, c.snapIndex)
	switch {
	case c.appliedIndex > end:
		return c.logBehind(fmt.Sprintf("the state has applied entries up to index %d", c.appliedIndex), end)
	case hs.GetCommit() > end:
		return c.logBehind(fmt.Sprintf("its stored HardState commits entries up to index %d", hs.GetCommit()), end)
	}
	return nil
}

// logBehind is ErrLogBehindState wrapped with what is past the log's end
// and what to do, in the manner of server.ErrLogMissing.
func (c *Core) logBehind(what string, end uint64) error {
	where := "the raft log"
	if c.cfg.LogDir != "" {
		where = "the raft log in " + c.cfg.LogDir
	}
	return fmt.Errorf("%w: %s, but %s ends at index %d (Pebble drops every record after damage in the "+
		"newest write-ahead log file of its database, for example); do not restart this member: remove it "+
		"(etcdctl member remove %x) and add it back with an empty data directory (etcdctl member add, "+
		"then start it with --initial-cluster-state existing), or restore it from a snapshot",
		ErrLogBehindState, what, where, end, c.cfg.ID)
}
