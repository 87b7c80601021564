package raftnode

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// maybeSnapshot records a raft snapshot at the applied index every
// SnapshotCount entries and truncates the log behind it, keeping
// SnapshotCatchUpEntries for followers that are only a little behind. The
// snapshot holds metadata only: the state is the live database, so the
// state is made durable through the applied index first (syncState): the
// snapshot tells a restart that the entries up to it need no replay, and
// the truncation removes them.
func (c *Core) maybeSnapshot() error {
	if c.appliedIndex < c.snapIndex+c.cfg.SnapshotCount {
		return nil
	}
	if err := c.syncState(); err != nil {
		return err
	}
	if _, err := c.cfg.Log.CreateSnapshot(c.appliedIndex, c.confState); err != nil {
		if errors.Is(err, raft.ErrSnapOutOfDate) {
			return nil
		}
		return fmt.Errorf("raftnode: create snapshot at %d: %w", c.appliedIndex, err)
	}
	c.snapIndex = c.appliedIndex
	// Entries raft has not yet handed out (a replay after a restart can
	// span several Readies) stay, whatever the state has applied.
	handed := min(c.appliedIndex, c.rn.BasicStatus().Applied)
	if handed <= c.cfg.SnapshotCatchUpEntries {
		return nil
	}
	compact := handed - c.cfg.SnapshotCatchUpEntries
	first, _ := c.cfg.Log.FirstIndex()
	if compact <= first {
		return nil
	}
	if err := c.cfg.Log.Compact(compact); err != nil && !errors.Is(err, raft.ErrCompacted) {
		return fmt.Errorf("raftnode: compact log to %d: %w", compact, err)
	}
	c.log.Debug("snapshot taken", "index", c.appliedIndex, "log-compacted-to", compact)
	return nil
}

// syncState makes the state durable through the applied index before the
// log may forget the entries that lead to it (Applier.Sync). The
// synod_unsafe_nostatesync build skips it, to show the simulation catches
// a log truncated ahead of the durable state.
func (c *Core) syncState() error {
	if unsafeNoStateSync {
		return nil
	}
	if err := c.cfg.Applier.Sync(); err != nil {
		return fmt.Errorf("raftnode: sync the state through %d before truncating the log: %w", c.appliedIndex, err)
	}
	return nil
}

// sendSnapshot streams the current state to m's recipient. Like etcd, the
// snapshot sent is the state as applied right now, which is at or after the
// index raft asked for; the message's metadata is rewritten to match.
func (c *Core) sendSnapshot(m *raftpb.Message) {
	s := c.cfg.Applier.NewSnapshot()
	m.Snapshot = &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{
		Index:     proto.Uint64(s.Index()),
		Term:      proto.Uint64(s.Term()),
		ConfState: proto.Clone(c.confState).(*raftpb.ConfState),
	}}
	c.log.Info("sending snapshot", "to", fmt.Sprintf("%x", m.GetTo()), "index", s.Index())
	c.stats.snapsSent.Add(1)
	c.tr.SendSnapshot(m, s, func(error) { s.Close() })
}

func (c *Core) reportSnapshot(s snapStatus) {
	st := raft.SnapshotFinish
	if s.failed {
		st = raft.SnapshotFailure
	}
	c.rn.ReportSnapshot(s.to, st)
}

// installSnapshot makes a snapshot received from the leader this member's
// state. The log is reset first (synced), recording the snapshot, and the
// state restored after from the received snapshot, which the Applier keeps
// until its state has reached it: if a crash falls between the two, the
// log's snapshot is ahead of the state and recoverSnapshot finishes the
// restore at the next start. So the state is never ahead of the log, and a
// state found ahead of it at start means the log lost entries
// (checkLogCoversState).
func (c *Core) installSnapshot(snap *raftpb.Snapshot) error {
	md := snap.GetMetadata()
	if err := c.cfg.Log.ApplySnapshot(snap); err != nil {
		return fmt.Errorf("raftnode: install snapshot in log: %w", err)
	}
	if err := c.cfg.Applier.Restore(md.GetIndex(), md.GetTerm()); err != nil {
		return fmt.Errorf("raftnode: restore snapshot %d (term %d): %w", md.GetIndex(), md.GetTerm(), err)
	}
	c.confState = md.GetConfState()
	c.snapIndex = md.GetIndex()
	c.appliedIndex, c.appliedTerm = md.GetIndex(), md.GetTerm()
	c.lastIdx.Store(md.GetIndex())
	c.durable = md.GetIndex()
	c.aw.advance(c.appliedIndex)
	c.stats.snapsInstalled.Add(1)
	c.log.Info("installed snapshot", "index", md.GetIndex(), "term", md.GetTerm())
	return nil
}

// recoverSnapshot finishes a snapshot install that a crash interrupted: the
// log already records a snapshot the state has not reached (installSnapshot
// resets the log first), and the Applier still keeps what it received.
func (c *Core) recoverSnapshot() error {
	snap, err := c.cfg.Log.Snapshot()
	if err != nil {
		return fmt.Errorf("raftnode: read snapshot metadata: %w", err)
	}
	md := snap.GetMetadata()
	applied, _ := c.cfg.Applier.Applied()
	if md.GetIndex() <= applied {
		return nil
	}
	if err := c.cfg.Applier.Restore(md.GetIndex(), md.GetTerm()); err != nil {
		return fmt.Errorf("raftnode: log starts at snapshot %d but the state is at %d and restoring it failed: %w",
			md.GetIndex(), applied, err)
	}
	return nil
}

// removeOldSnapshotFiles removes the received snapshot files an older
// release kept in SnapDir: the Applier keeps received snapshots now, and
// an install that release left unfinished was finished by the Applier's
// own open, from its restore marker, before NewCore.
func (c *Core) removeOldSnapshotFiles() {
	if c.cfg.SnapDir == "" {
		return
	}
	names, _ := filepath.Glob(filepath.Join(c.cfg.SnapDir, "*.snap*"))
	for _, p := range names {
		os.Remove(p)
	}
}

// receiveSnapshot stores and verifies a snapshot stream (StoreSnapshot),
// then hands its message to the loop.
func (n *Node) receiveSnapshot(m *raftpb.Message, body io.Reader) error {
	if err := n.c.storeSnapshot(m, body); err != nil {
		return err
	}
	select {
	case n.recvc <- m:
		return nil
	case <-time.After(n.c.cfg.RequestTimeout):
		return errors.New("raftnode: raft loop busy; snapshot not accepted")
	case <-n.done:
		return ErrStopped
	}
}

// storeSnapshot has the Applier store and verify a snapshot stream
// (Applier.ReceiveSnapshot).
func (c *Core) storeSnapshot(m *raftpb.Message, body io.Reader) error {
	md := m.GetSnapshot().GetMetadata()
	if md == nil || md.GetIndex() == 0 {
		return errors.New("raftnode: snapshot message without metadata")
	}
	from := fmt.Sprintf("%x", m.GetFrom())
	c.log.Info("receiving snapshot", "from", from, "index", md.GetIndex())
	start := c.cfg.Now()
	if err := c.cfg.Applier.ReceiveSnapshot(md.GetIndex(), md.GetTerm(), body); err != nil {
		return fmt.Errorf("raftnode: received snapshot %d (term %d) refused: %w", md.GetIndex(), md.GetTerm(), err)
	}
	c.log.Info("received snapshot", "from", from, "index", md.GetIndex(), "took", c.cfg.Now().Sub(start).Round(time.Millisecond))
	return nil
}
