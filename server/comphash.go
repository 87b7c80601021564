package server

import (
	"context"
	"fmt"
	"slices"

	"go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/synod-db/synod/mvcc"
)

// compactVerdict is the judgment of one of the leader's compaction hashes
// against its peers' answers (compactHashVerdict).
type compactVerdict struct {
	// done: stop at this hash. Either every peer agreed, or some member
	// differs; a hash some peer could not be compared on leaves the
	// check to the next older one.
	done bool
	// agreed: every peer answered with the same compaction and hash.
	agreed bool
	// checked counts the peers compared; skipped gives why each other
	// peer was not.
	checked int
	skipped []string
	// corrupt are the members the CORRUPT alarm is raised for: every
	// member outside the majority hash, or 0 alone (the whole cluster)
	// when no hash has a majority. Empty when all compared alike.
	corrupt []uint64
}

// compactHashVerdict is etcd's CompactHashCheck judgment of the leader's
// (self) compaction hash h: peers that did not answer, or answered for
// another previous compaction revision, are skipped; the compared members
// (the leader included) are grouped by hash; if there is more than one
// group, every member outside a group holding a majority of all members
// (peers + 1) is corrupt, or, when no group has one, the alarm is raised
// for member 0. Pure: the caller logs and raises the alarms.
func compactHashVerdict(self uint64, h mvcc.KeyValueHash, peers []peerHash) compactVerdict {
	var v compactVerdict
	groups := map[uint32][]uint64{h.Hash: {self}}
	for _, p := range peers {
		switch r := p.resp; {
		case r == nil:
			v.skipped = append(v.skipped, fmt.Sprintf("%x: no response (%v)", p.id, p.err))
		case r.GetCompactRevision() != h.CompactRevision:
			v.skipped = append(v.skipped, fmt.Sprintf("%x: the peer's CompactRevision %d doesn't match leader's CompactRevision %d",
				p.id, r.GetCompactRevision(), h.CompactRevision))
		default:
			v.checked++
			groups[r.GetHash()] = append(groups[r.GetHash()], p.id)
		}
	}
	if len(groups) == 1 {
		v.agreed = v.checked == len(peers)
		v.done = v.agreed
		return v
	}
	v.done = true
	quorum := (len(peers)+1)/2 + 1
	majority, found := uint32(0), false
	for hash, ids := range groups {
		if len(ids) >= quorum {
			majority, found = hash, true
		}
	}
	if !found {
		v.corrupt = []uint64{0}
		return v
	}
	for hash, ids := range groups {
		if hash != majority {
			v.corrupt = append(v.corrupt, ids...)
		}
	}
	slices.Sort(v.corrupt)
	return v
}

// compactHashCheckTick is etcd's compaction hash check
// (--feature-gates=CompactHashCheck=true), run every
// --compact-hash-check-time on the leader: for its recorded compaction
// hashes newer than the last one found alike on every member, newest
// first, it asks every peer for its hash at that revision, until one is
// judged (compactHashVerdict): alike everywhere, or some member differs,
// which raises the CORRUPT alarm for it.
func (m *Member) compactHashCheckTick() {
	if !m.node.IsLeader() {
		return
	}
	hashes := m.sm.KV().CompactHashes()
	checked := m.hashChecked.Load()
	n := 0
	for i := len(hashes) - 1; i >= 0 && hashes[i].Revision > checked; i-- {
		n++
		ctx, cancel := context.WithTimeout(context.Background(), m.requestTimeout())
		done := m.checkCompactHash(ctx, hashes[i])
		cancel()
		if done {
			break
		}
	}
	m.log.Info("finished compaction hash check", "number-of-hashes-checked", n)
}

// checkCompactHash judges one recorded compaction hash and acts on the
// verdict; it reports whether the check may stop there.
func (m *Member) checkCompactHash(ctx context.Context, h mvcc.KeyValueHash) bool {
	v := compactHashVerdict(m.id, h, m.peerHashes(ctx, h.Revision))
	for _, why := range v.skipped {
		m.log.Warn("compaction hash check: skipped peer's hash", "revision", h.Revision, "reason", why)
	}
	switch {
	case v.agreed:
		m.log.Info("compaction hash check: alike on the whole cluster", "revision", h.Revision,
			"compact-revision", h.CompactRevision, "peers-checked", v.checked)
		if h.Revision > m.hashChecked.Load() { // the check's goroutine is its only writer
			m.hashChecked.Store(h.Revision)
		}
	case len(v.corrupt) > 0:
		for _, id := range v.corrupt {
			m.log.Error("compaction hash check: hash mismatch", "member", fmt.Sprintf("%x", id), "revision", h.Revision,
				"compact-revision", h.CompactRevision, "leader-hash", h.Hash, "whole-cluster", id == 0)
			err := m.raiseAlarm(ctx, id, etcdserverpb.AlarmType_CORRUPT)
			if err != nil {
				m.log.Error("compaction hash check: raising CORRUPT failed", "member", fmt.Sprintf("%x", id), "err", err)
			}
		}
	default:
		m.log.Warn("compaction hash check: skipped revision; not every peer could be compared", "revision", h.Revision,
			"peers-checked", v.checked)
	}
	return v.done
}

// CompactHashChecked is the revision of the newest compaction this member,
// as leader, found alike on every member (0: none yet): how far the
// compaction hash check has vouched for the cluster's histories.
func (m *Member) CompactHashChecked() int64 { return m.hashChecked.Load() }
