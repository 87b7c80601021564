package server

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"
)

// hashPoint is one member's HashKV: the hash of its history up to rev,
// with its compaction revision (-1 if none).
type hashPoint struct {
	hash            uint32
	rev, compactRev int64
}

// peerHash is a peer's answer to the corruption check: its hash at the
// leader's revision and its own revision, or the error it answered with
// (or failed to answer).
type peerHash struct {
	id   uint64
	resp *etcdserverpb.HashKVResponse // nil when err is set
	err  error
}

// finding is one reason to suspect a member's state.
type finding struct {
	id     uint64
	reason string
}

// corruptionFindings is the verdict of etcd's periodic corruption check,
// run by the leader (self): before is its hash taken before the peers were
// asked at before.rev, after its hash taken after a linearizable barrier.
// The leader itself is suspect if its own history hashed differently at the
// same revision; a peer is suspect if it is ahead of the leader (revision or
// compaction), or if it hashed the same revision with the same compaction
// revision differently. Peers that did not answer (not caught up to that
// revision, compacted past it, unreachable) are not judged. Pure: the
// caller logs the findings and raises the alarm.
func corruptionFindings(self uint64, before, after hashPoint, peers []peerHash) []finding {
	var out []finding
	if after.hash != before.hash && after.rev == before.rev && after.compactRev == before.compactRev {
		out = append(out, finding{self, fmt.Sprintf(
			"its own hash at revision %d changed from %d to %d (compact revision %d)",
			before.rev, before.hash, after.hash, before.compactRev)})
	}
	for _, p := range peers {
		if p.resp == nil {
			continue
		}
		r := p.resp
		if r.GetHeader().GetRevision() > after.rev {
			out = append(out, finding{p.id, fmt.Sprintf(
				"revision %d is ahead of the leader's %d", r.GetHeader().GetRevision(), after.rev)})
		}
		if r.GetCompactRevision() > after.compactRev {
			out = append(out, finding{p.id, fmt.Sprintf(
				"compact revision %d is ahead of the leader's %d", r.GetCompactRevision(), after.compactRev)})
		}
		if r.GetCompactRevision() == before.compactRev && r.GetHash() != before.hash {
			out = append(out, finding{p.id, fmt.Sprintf(
				"hash %d at revision %d differs from the leader's %d (compact revision %d)",
				r.GetHash(), before.rev, before.hash, before.compactRev)})
		}
	}
	return out
}

// corruptCheckTick is the leader's periodic corruption check (etcd's
// --corrupt-check-time), run every interval: if this member leads, it
// compares its HashKV with every other member's at the same revision and
// raises the CORRUPT alarm for the first member found suspect. The alarm
// stops every write on every member (alarm.Corrupt) until an operator
// disarms it.
func (m *Member) corruptCheckTick() {
	if !m.node.IsLeader() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.requestTimeout())
	defer cancel()
	if err := m.CheckCorruption(ctx); err != nil {
		m.log.Warn("corruption check did not finish", "err", err)
	}
}

// CheckCorruption runs one corruption check from this member (the periodic
// check runs it on the leader): it compares this member's HashKV with every
// other member's at the same revision (see corruptionFindings), logs every
// member found suspect and raises the CORRUPT alarm for the first, through
// raft. It returns an error when the check could not be made (no local
// hash, no linearizable barrier) or the alarm could not be raised; peers
// that do not answer are logged and skipped.
func (m *Member) CheckCorruption(ctx context.Context) error {
	before, err := m.localHash()
	if err != nil {
		return err
	}
	peers := m.peerHashes(ctx, before.rev)
	if err := m.node.ReadIndex(ctx); err != nil {
		return err
	}
	after, err := m.localHash()
	if err != nil {
		return err
	}
	checked := 0
	for _, p := range peers {
		if p.err != nil {
			m.log.Warn("corruption check: no hash from peer", "peer", fmt.Sprintf("%x", p.id), "revision", before.rev, "err", p.err)
			continue
		}
		checked++
	}
	findings := corruptionFindings(m.id, before, after, peers)
	for _, f := range findings {
		m.log.Error("corruption check: member state differs", "member", fmt.Sprintf("%x", f.id), "reason", f.reason)
	}
	if len(findings) == 0 {
		m.log.Info("corruption check passed", "revision", before.rev, "peers-checked", checked)
		return nil
	}
	// As etcd: one alarm per check, for the first suspect.
	err = m.raiseAlarm(ctx, findings[0].id, etcdserverpb.AlarmType_CORRUPT)
	if err != nil {
		return fmt.Errorf("raise CORRUPT for %x: %w", findings[0].id, err)
	}
	return nil
}

func (m *Member) localHash() (hashPoint, error) {
	h, rev, compactRev, err := m.sm.KV().HashKV(0)
	if err != nil {
		return hashPoint{}, fmt.Errorf("server: local hash: %w", err)
	}
	return hashPoint{hash: h, rev: rev, compactRev: compactRev}, nil
}

// peerHashes asks every other member, concurrently, for its HashKV at rev.
func (m *Member) peerHashes(ctx context.Context, rev int64) []peerHash {
	req, err := proto.Marshal(&etcdserverpb.HashKVRequest{Revision: rev})
	if err != nil {
		return nil
	}
	var peers []peerHash
	var urls [][]string
	for _, mem := range m.sm.Members().List() {
		if mem.GetID() != m.id {
			peers = append(peers, peerHash{id: mem.GetID()})
			urls = append(urls, mem.GetPeerURLs())
		}
	}
	var wg sync.WaitGroup
	for i := range peers {
		wg.Add(1)
		go func(p *peerHash, urls []string) {
			defer wg.Done()
			b, err := m.tr.PeerHashKV(ctx, p.id, urls, req)
			if err == nil {
				p.resp = &etcdserverpb.HashKVResponse{}
				if err = proto.Unmarshal(b, p.resp); err != nil {
					p.resp = nil
				}
			}
			p.err = err
		}(&peers[i], urls[i])
	}
	wg.Wait()
	return peers
}

// initialCorruptionFindings is the verdict of etcd's initial corruption
// check: a peer that hashed this member's revision with the same
// compaction revision, but to a different hash. A peer with another
// compaction revision cannot be compared (logged by the caller).
func initialCorruptionFindings(local hashPoint, peers []peerHash) []finding {
	var out []finding
	for _, p := range peers {
		r := p.resp
		if r == nil || r.GetCompactRevision() != local.compactRev || r.GetHash() == local.hash {
			continue
		}
		out = append(out, finding{p.id, fmt.Sprintf(
			"hash %d at revision %d differs from this member's %d (compact revision %d)",
			r.GetHash(), local.rev, local.hash, local.compactRev)})
	}
	return out
}

// ErrInconsistentPeers is why a member refuses to start when the initial
// corruption check finds a peer whose history differs from its own.
var ErrInconsistentPeers = errors.New("found data inconsistency with peers")

// checkInitialCorruption is etcd's initial corruption check
// (--feature-gates=InitialCorruptCheck=true), run by New before the member
// starts: it compares this member's HashKV with every peer's at its own
// revision and fails with ErrInconsistentPeers if one that hashed the same
// revision with the same compaction revision disagrees. Peers that are
// behind, compacted past it or unreachable are logged and skipped, as in
// etcd, so a whole-cluster restart is not blocked. A member that has
// applied nothing (a new one) is not checked.
func (m *Member) checkInitialCorruption(ctx context.Context) error {
	if idx, _ := m.sm.KV().Applied(); idx == 0 {
		return nil
	}
	local, err := m.localHash()
	if err != nil {
		return err
	}
	peers := m.peerHashes(ctx, local.rev)
	for _, p := range peers {
		switch {
		case p.err != nil:
			m.log.Warn("initial corruption check: no hash from peer", "peer", fmt.Sprintf("%x", p.id), "revision", local.rev, "err", p.err)
		case p.resp.GetCompactRevision() != local.compactRev:
			m.log.Warn("initial corruption check: peer compacted elsewhere; not compared", "peer", fmt.Sprintf("%x", p.id),
				"compact-revision", local.compactRev, "peer-compact-revision", p.resp.GetCompactRevision())
		}
	}
	findings := initialCorruptionFindings(local, peers)
	for _, f := range findings {
		m.log.Error("initial corruption check: peer state differs", "peer", fmt.Sprintf("%x", f.id), "reason", f.reason)
	}
	if len(findings) > 0 {
		return fmt.Errorf("server: member %x %w", m.id, ErrInconsistentPeers)
	}
	m.log.Info("initial corruption check passed", "revision", local.rev, "peers", len(peers))
	return nil
}

// PeerHashKV answers a corruption check (transport.Hasher): this member's
// hash at the requested revision (mvcc.Store.HashByRev, as etcd's peer
// endpoint: the hash a compaction recorded for that revision, if it is a
// recent compaction's, else HashKV), with its header (its current
// revision). A revision it has not applied yet fails with
// mvcc.ErrFutureRev's text, a compacted one with mvcc.ErrCompacted's.
// Hashing reads the whole history, so one request is served at a time; the
// others wait, until their ctx ends.
func (m *Member) PeerHashKV(ctx context.Context, body []byte) ([]byte, error) {
	var req etcdserverpb.HashKVRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		return nil, fmt.Errorf("server: decode hash request: %w", err)
	}
	if req.GetRevision() < 0 {
		return nil, errors.New("server: negative revision")
	}
	select {
	case m.hashSlot <- struct{}{}:
		defer func() { <-m.hashSlot }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	hdr := m.Header()
	h, rev, compactRev, err := m.sm.KV().HashByRev(req.GetRevision())
	if err != nil {
		return nil, err
	}
	return proto.Marshal(&etcdserverpb.HashKVResponse{Header: hdr, Hash: h, HashRevision: rev, CompactRevision: compactRev})
}
