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
// state restored after from the received file, which stays until the next
// install: if a crash falls between the two, the log's snapshot is ahead of
// the state and recoverSnapshot finishes the restore at the next start. So
// the state is never ahead of the log, and a state found ahead of it at
// start means the log lost entries (checkLogCoversState).
func (c *Core) installSnapshot(snap *raftpb.Snapshot) error {
	md := snap.GetMetadata()
	path := c.snapPath(md.GetTerm(), md.GetIndex())
	if err := c.cfg.Log.ApplySnapshot(snap); err != nil {
		return fmt.Errorf("raftnode: install snapshot in log: %w", err)
	}
	if err := c.cfg.Applier.Restore(path); err != nil {
		return fmt.Errorf("raftnode: restore snapshot %s: %w", path, err)
	}
	c.confState = md.GetConfState()
	c.snapIndex = md.GetIndex()
	c.appliedIndex, c.appliedTerm = md.GetIndex(), md.GetTerm()
	c.lastIdx.Store(md.GetIndex())
	c.aw.advance(c.appliedIndex)
	c.removeSnapshotsExcept(path)
	c.stats.snapsInstalled.Add(1)
	c.log.Info("installed snapshot", "index", md.GetIndex(), "term", md.GetTerm())
	return nil
}

// recoverSnapshot finishes a snapshot install that a crash interrupted: the
// log already records a snapshot the state has not reached (installSnapshot
// resets the log first), and the received file is still there.
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
	path := c.snapPath(md.GetTerm(), md.GetIndex())
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("raftnode: log starts at snapshot %d but the state is at %d and %s is unreadable: %w",
			md.GetIndex(), applied, path, err)
	}
	return c.cfg.Applier.Restore(path)
}

func (c *Core) snapPath(term, index uint64) string {
	return filepath.Join(c.cfg.SnapDir, fmt.Sprintf("%016x-%016x.snap", term, index))
}

func (c *Core) removeSnapshotsExcept(keep string) {
	names, _ := filepath.Glob(filepath.Join(c.cfg.SnapDir, "*.snap*"))
	for _, p := range names {
		if p != keep {
			os.Remove(p)
		}
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

// storeSnapshot stores a snapshot stream durably under its final name and
// verifies it end to end.
func (c *Core) storeSnapshot(m *raftpb.Message, body io.Reader) error {
	md := m.GetSnapshot().GetMetadata()
	if md == nil || md.GetIndex() == 0 {
		return errors.New("raftnode: snapshot message without metadata")
	}
	if err := os.MkdirAll(c.cfg.SnapDir, 0o700); err != nil {
		return err
	}
	path := c.snapPath(md.GetTerm(), md.GetIndex())
	if err := writeFileSync(path, body); err != nil {
		return err
	}
	if err := c.cfg.Applier.VerifySnapshot(path); err != nil {
		os.Remove(path)
		return fmt.Errorf("raftnode: received snapshot %d failed verification: %w", md.GetIndex(), err)
	}
	return nil
}

func writeFileSync(path string, body io.Reader) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("raftnode: write snapshot %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
