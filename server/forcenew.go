package server

import (
	"errors"
	"fmt"
	"slices"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// ErrForceNewCluster is wrapped by the reasons --force-new-cluster refuses
// to rewrite a member's raft log.
var ErrForceNewCluster = errors.New("server: --force-new-cluster")

// forceNewClusterPage bounds the raft log read at once while looking for
// configuration changes.
const forceNewClusterPage = 16 << 20

// maybeForceNewCluster carries out --force-new-cluster on a restarted
// member, as etcd does: raft log entries past the commit index (never
// acknowledged to anyone) are discarded, and a removal of every other
// member is appended at the current term and committed. Raft applies those
// removals when it starts, through the ordinary conf change path, so raft's
// configuration becomes this member alone and the membership records the
// others as removed; every key stays. The member then elects itself.
func (m *Member) maybeForceNewCluster() error {
	if !m.cfg.ForceNewCluster {
		return nil
	}
	hs, cs, err := m.logStore.InitialState()
	if err != nil || hs == nil {
		return err // no raft state yet: nothing to force
	}
	snap, err := m.logStore.Snapshot()
	if err != nil {
		return err
	}
	last, err := m.logStore.LastIndex()
	if err != nil {
		return err
	}
	applied, _ := m.store.Applied()
	// Applied entries are committed even where the stored commit index
	// lagged behind them (it is written lazily, as etcd's is).
	commit := max(hs.GetCommit(), applied, snap.GetMetadata().GetIndex())
	if commit > last {
		return fmt.Errorf("%w: the applied index %d is past the raft log's last index %d", ErrForceNewCluster, commit, last)
	}
	ids, err := m.configurationAt(cs, snap.GetMetadata().GetIndex(), commit, applied)
	if err != nil {
		return err
	}
	if ids[m.id] != voter {
		return fmt.Errorf("%w: member %x is not a voting member of the cluster (a learner must be promoted first)", ErrForceNewCluster, m.id)
	}
	ents, err := removeOthers(ids, m.id, hs.GetTerm(), commit)
	if err != nil {
		return err
	}
	m.log.Info("forcing restart member", "cluster-id", fmt.Sprintf("%x", m.clusterID), "local-member-id", fmt.Sprintf("%x", m.id),
		"wal-commit-index", hs.GetCommit(), "commit-index", commit+uint64(len(ents)),
		"discarded-uncommitted-entries", last-commit, "removing-members", len(ents))
	if len(ents) == 0 {
		return nil // already a one-member configuration: its log is its own
	}
	newHS := &raftpb.HardState{Term: proto.Uint64(hs.GetTerm()), Vote: proto.Uint64(hs.GetVote()),
		Commit: proto.Uint64(commit + uint64(len(ents)))}
	// Save overwrites the entries after commit and deletes the rest.
	return m.logStore.Save(newHS, ents, true)
}

// Raft roles in the configuration configurationAt computes.
const (
	absent = iota
	voter
	learner
)

// configurationAt is raft's configuration once the log up to commit is
// applied: the snapshot's ConfState (at snapIndex), then every conf change after it that
// was not rejected (rejections are known for the entries up to applied;
// later ones would be judged on apply). Like etcd, it reads V1 changes only.
func (m *Member) configurationAt(cs *raftpb.ConfState, snapIndex, commit, applied uint64) (map[uint64]int, error) {
	ids := map[uint64]int{}
	for _, id := range cs.GetVoters() {
		ids[id] = voter
	}
	for _, id := range cs.GetLearners() {
		ids[id] = learner
	}
	first, err := m.logStore.FirstIndex()
	if err != nil {
		return nil, err
	}
	for lo := max(first, snapIndex+1); lo <= commit; {
		ents, err := m.logStore.Entries(lo, commit+1, forceNewClusterPage)
		if err != nil {
			return nil, fmt.Errorf("%w: read the raft log: %w", ErrForceNewCluster, err)
		}
		for _, e := range ents {
			if err := m.noteConfChange(ids, e, applied); err != nil {
				return nil, err
			}
		}
		lo += uint64(len(ents))
	}
	return ids, nil
}

// noteConfChange applies the conf change in e, if any, to ids.
func (m *Member) noteConfChange(ids map[uint64]int, e *raftpb.Entry, applied uint64) error {
	switch e.GetType() {
	case raftpb.EntryType_EntryConfChange:
	case raftpb.EntryType_EntryConfChangeV2:
		return fmt.Errorf("%w: raft entry %d is a joint configuration change, which synod never proposes", ErrForceNewCluster, e.GetIndex())
	default:
		return nil
	}
	if e.GetIndex() <= applied {
		if rejected, err := wasRejected(m.db, e.GetIndex()); err != nil || rejected {
			return err
		}
	}
	var cc raftpb.ConfChange
	if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
		return fmt.Errorf("%w: decode the conf change at %d: %w", ErrForceNewCluster, e.GetIndex(), err)
	}
	switch cc.GetType() {
	case raftpb.ConfChangeType_ConfChangeAddNode:
		ids[cc.GetNodeId()] = voter
	case raftpb.ConfChangeType_ConfChangeAddLearnerNode:
		ids[cc.GetNodeId()] = learner
	case raftpb.ConfChangeType_ConfChangeRemoveNode:
		delete(ids, cc.GetNodeId())
	}
	return nil
}

// removeOthers returns the entries, from index after+1 at term, that remove
// every member of ids but self, in ascending ID order (as etcd).
func removeOthers(ids map[uint64]int, self, term, after uint64) ([]*raftpb.Entry, error) {
	var others []uint64
	for id := range ids {
		if id != self && id != 0 {
			others = append(others, id)
		}
	}
	slices.Sort(others)
	ents := make([]*raftpb.Entry, 0, len(others))
	for i, id := range others {
		data, err := proto.Marshal(&raftpb.ConfChange{Type: raftpb.ConfChangeType_ConfChangeRemoveNode.Enum(), NodeId: proto.Uint64(id)})
		if err != nil {
			return nil, err
		}
		ents = append(ents, &raftpb.Entry{Type: raftpb.EntryType_EntryConfChange.Enum(), Term: proto.Uint64(term),
			Index: proto.Uint64(after + 1 + uint64(i)), Data: data})
	}
	return ents, nil
}
