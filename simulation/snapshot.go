package simulation

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/mvcc"
)

// Raft snapshots, as raftnode/snapshot.go: every snapshotCount applied
// entries the member records a snapshot (metadata only; the state is the
// live database) and truncates its log, keeping catchUpEntries; a follower
// too far behind gets the leader's whole state machine. The stream travels
// in the message's Data field (synod's transport streams it beside the
// message) and is written, synced and verified into the follower's snapshot
// directory before raft sees the message. Snapshot files live on the real
// filesystem and survive crashes (raftnode syncs them before use).

// maybeSnapshot records a snapshot at the applied index and compacts the log.
func (m *member) maybeSnapshot() error {
	if m.applied < m.snapIndex+m.c.snapshotCount {
		return nil
	}
	if _, err := m.disk.log.CreateSnapshot(m.applied, m.confState); err != nil {
		if errors.Is(err, raft.ErrSnapOutOfDate) {
			return nil
		}
		return fmt.Errorf("create snapshot at %d: %w", m.applied, err)
	}
	m.snapIndex = m.applied
	m.c.tracef("snapshot %x at %d", m.id, m.applied)
	if m.applied <= m.c.catchUpEntries {
		return nil
	}
	compact := m.applied - m.c.catchUpEntries
	if first, _ := m.disk.log.FirstIndex(); compact <= first {
		return nil
	}
	if err := m.disk.log.Compact(compact); err != nil && !errors.Is(err, raft.ErrCompacted) {
		return fmt.Errorf("compact log to %d: %w", compact, err)
	}
	return nil
}

// sendSnapshot sends the state as applied now (at or after the index raft
// asked for, with the metadata rewritten to match, as raftnode does) and
// reports to raft whether it arrived.
func (m *member) sendSnapshot(msg *raftpb.Message) error {
	s := m.disk.store.NewSnapshot()
	defer s.Close()
	var buf bytes.Buffer
	if _, err := s.WriteTo(&buf); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	msg.Snapshot = &raftpb.Snapshot{Data: buf.Bytes(), Metadata: &raftpb.SnapshotMetadata{
		Index:     proto.Uint64(s.Index()),
		Term:      proto.Uint64(s.Term()),
		ConfState: proto.Clone(m.confState).(*raftpb.ConfState),
	}}
	m.c.tracef("send snapshot %x→%x at %d (%d bytes)", m.id, msg.GetTo(), s.Index(), buf.Len())
	rn, to := m.rn, msg.GetTo()
	m.c.net.sendReport(msg, func(delivered bool) {
		if m.rn != rn { // crashed and restarted since
			return
		}
		st := raft.SnapshotFinish
		if !delivered {
			st = raft.SnapshotFailure
		}
		m.rn.ReportSnapshot(to, st)
		m.c.fail(m.process())
	})
	return nil
}

// receiveSnapshot stores and verifies a snapshot stream, then lets raft
// see the message without it.
func (m *member) receiveSnapshot(msg *raftpb.Message) error {
	md := msg.GetSnapshot().GetMetadata()
	path := m.snapPath(md.GetTerm(), md.GetIndex())
	if err := os.WriteFile(path, msg.GetSnapshot().GetData(), 0o600); err != nil {
		return err
	}
	if err := mvcc.VerifySnapshotFile(path); err != nil {
		return fmt.Errorf("received snapshot %d failed verification: %w", md.GetIndex(), err)
	}
	msg.Snapshot.Data = nil
	return nil
}

// installSnapshot makes a received snapshot the member's state: state
// first, then the log, so a crash between leaves the state ahead of the log.
func (m *member) installSnapshot(snap *raftpb.Snapshot) error {
	md := snap.GetMetadata()
	if err := m.disk.store.Restore(m.snapPath(md.GetTerm(), md.GetIndex())); err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	if err := m.loadLeases(); err != nil {
		return fmt.Errorf("reload leases after restore: %w", err)
	}
	if err := m.disk.log.ApplySnapshot(snap); err != nil {
		return fmt.Errorf("install snapshot in log: %w", err)
	}
	m.confState = md.GetConfState()
	m.snapIndex, m.applied = md.GetIndex(), md.GetIndex()
	m.c.tracef("installed snapshot %x at %d/%d", m.id, md.GetIndex(), md.GetTerm())
	return nil
}

// recoverSnapshot finishes an install a crash interrupted: the log records
// a snapshot the state has not reached.
func (m *member) recoverSnapshot() error {
	snap, err := m.disk.log.Snapshot()
	if err != nil {
		return err
	}
	md := snap.GetMetadata()
	if applied, _ := m.disk.store.Applied(); md.GetIndex() <= applied {
		return nil
	}
	return m.disk.store.Restore(m.snapPath(md.GetTerm(), md.GetIndex()))
}

func (m *member) snapPath(term, index uint64) string {
	return filepath.Join(m.snapDir, fmt.Sprintf("%016x-%016x.snap", term, index))
}
