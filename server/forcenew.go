package server

import (
	"errors"
	"fmt"
	"slices"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/membership"
)

// ErrForceNewCluster is wrapped by the reasons --force-new-cluster refuses
// to rewrite a member's raft log.
var ErrForceNewCluster = errors.New("server: --force-new-cluster")

// forceNewClusterPage bounds the raft log read at once while looking for
// configuration changes.
const forceNewClusterPage = 16 << 20

// raftLog is the part of storage.LogStore that --force-new-cluster reads
// and rewrites.
type raftLog interface {
	InitialState() (*raftpb.HardState, *raftpb.ConfState, error)
	Snapshot() (*raftpb.Snapshot, error)
	FirstIndex() (uint64, error)
	LastIndex() (uint64, error)
	Entries(lo, hi, maxSize uint64) ([]*raftpb.Entry, error)
	Save(hs *raftpb.HardState, ents []*raftpb.Entry, sync bool) error
}

// forcedRestart describes what --force-new-cluster did to the raft log.
type forcedRestart struct {
	storedCommit, commit uint64 // the commit index stored, and the one kept
	discarded            uint64 // uncommitted entries dropped
	removed              []uint64
}

// maybeForceNewCluster carries out --force-new-cluster on a restarted
// member (see forceNewCluster).
func (m *Member) maybeForceNewCluster() error {
	if !m.cfg.ForceNewCluster {
		return nil
	}
	applied, _ := m.sm.KV().Applied()
	f, err := forceNewCluster(m.logStore, m.id, applied, func(index uint64) (bool, error) { return membership.WasRejected(m.db, index) })
	if err != nil {
		return err
	}
	m.log.Info("forcing restart member", "cluster-id", fmt.Sprintf("%x", m.clusterID), "local-member-id", fmt.Sprintf("%x", m.id),
		"wal-commit-index", f.storedCommit, "commit-index", f.commit,
		"discarded-uncommitted-entries", f.discarded, "removed-members", fmt.Sprintf("%x", f.removed))
	return nil
}

// forceNewCluster rewrites log as etcd's --force-new-cluster does: the
// entries past the commit index (never acknowledged to anyone) are
// discarded, and a removal of every member but self is appended at the
// current term and committed. Raft applies those removals when it starts,
// through the ordinary conf change path, so raft's configuration becomes
// self alone and the membership records the others as removed; every key
// stays, and the member then elects itself. applied is the state's applied
// index; rejected reports the conf changes up to it that were rejected. A
// log with no raft state, or already configured with self alone, is left
// as it is.
func forceNewCluster(log raftLog, self, applied uint64, rejected func(uint64) (bool, error)) (forcedRestart, error) {
	var f forcedRestart
	hs, cs, err := log.InitialState()
	if err != nil || hs == nil {
		return f, err // no raft state yet: nothing to force
	}
	snap, err := log.Snapshot()
	if err != nil {
		return f, err
	}
	last, err := log.LastIndex()
	if err != nil {
		return f, err
	}
	snapIndex := snap.GetMetadata().GetIndex()
	// Applied entries are committed even where the stored commit index
	// lags behind them (it is written lazily, as etcd's is).
	f.storedCommit = hs.GetCommit()
	f.commit = max(hs.GetCommit(), applied, snapIndex)
	if f.commit > last {
		return f, fmt.Errorf("%w: the applied index %d is past the raft log's last index %d", ErrForceNewCluster, f.commit, last)
	}
	ids, err := configurationAt(log, cs, snapIndex, f.commit, applied, rejected)
	if err != nil {
		return f, err
	}
	if ids[self] != voter {
		return f, fmt.Errorf("%w: member %x is not a voting member of the cluster (a learner must be promoted first)", ErrForceNewCluster, self)
	}
	var ents []*raftpb.Entry
	ents, f.removed, err = removeOthers(ids, self, hs.GetTerm(), f.commit)
	if err != nil || len(ents) == 0 {
		return f, err // already a one-member configuration: its log is its own
	}
	f.discarded = last - f.commit
	f.commit += uint64(len(ents))
	newHS := &raftpb.HardState{Term: proto.Uint64(hs.GetTerm()), Vote: proto.Uint64(hs.GetVote()), Commit: proto.Uint64(f.commit)}
	// Save overwrites the entries after the old commit index and deletes
	// the rest.
	return f, log.Save(newHS, ents, true)
}

// Raft roles in the configuration configurationAt computes.
const (
	absent = iota
	voter
	learner
)

// configurationAt is raft's configuration once the log up to commit is
// applied: the snapshot's ConfState (at snapIndex), then every conf change
// after it that was not rejected (rejections are known for the entries up
// to applied; later ones would be judged on apply). Like etcd, it reads V1
// changes only: synod never proposes joint (V2) changes.
func configurationAt(log raftLog, cs *raftpb.ConfState, snapIndex, commit, applied uint64, rejected func(uint64) (bool, error)) (map[uint64]int, error) {
	ids := map[uint64]int{}
	for _, id := range cs.GetVoters() {
		ids[id] = voter
	}
	for _, id := range cs.GetLearners() {
		ids[id] = learner
	}
	first, err := log.FirstIndex()
	if err != nil {
		return nil, err
	}
	for lo := max(first, snapIndex+1); lo <= commit; {
		ents, err := log.Entries(lo, commit+1, forceNewClusterPage)
		if err != nil {
			return nil, fmt.Errorf("%w: read the raft log: %w", ErrForceNewCluster, err)
		}
		for _, e := range ents {
			if e.GetIndex() <= applied && e.GetType() == raftpb.EntryType_EntryConfChange {
				if r, err := rejected(e.GetIndex()); err != nil || r {
					if err != nil {
						return nil, err
					}
					continue
				}
			}
			if err := noteConfChange(ids, e); err != nil {
				return nil, err
			}
		}
		lo += uint64(len(ents))
	}
	return ids, nil
}

// noteConfChange applies the conf change in e, if any, to ids.
func noteConfChange(ids map[uint64]int, e *raftpb.Entry) error {
	switch e.GetType() {
	case raftpb.EntryType_EntryConfChange:
	case raftpb.EntryType_EntryConfChangeV2:
		return fmt.Errorf("%w: raft entry %d is a joint configuration change, which synod never proposes", ErrForceNewCluster, e.GetIndex())
	default:
		return nil
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
// every member of ids but self, in ascending ID order (as etcd), and the IDs.
func removeOthers(ids map[uint64]int, self, term, after uint64) ([]*raftpb.Entry, []uint64, error) {
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
			return nil, nil, err
		}
		ents = append(ents, &raftpb.Entry{Type: raftpb.EntryType_EntryConfChange.Enum(), Term: proto.Uint64(term),
			Index: proto.Uint64(after + 1 + uint64(i)), Data: data})
	}
	return ents, others, nil
}
