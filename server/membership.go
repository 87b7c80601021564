package server

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/membership"
	"github.com/synod-db/synod/raftnode"
	"github.com/synod-db/synod/transport"
)

// Membership operations as they travel to the leader (transport
// Membership.MemberChange op names).
const (
	opAdd     = "add"
	opRemove  = "remove"
	opUpdate  = "update"
	opPromote = "promote"
)

// nodeErrors are the raftnode errors a forwarded change may come back with.
var nodeErrors = []error{
	raftnode.ErrNoLeader, raftnode.ErrTimeout, raftnode.ErrStopped, raftnode.ErrLeaderLost,
	raftnode.ErrLeaderChanged, raftnode.ErrTooManyRequests, raftnode.ErrConfChangePending,
}

// AddMember adds a member with peerURLs (as a learner if learner is set) and
// returns it (ID, PeerURLs, IsLearner) with the membership after the change.
// Its ID is etcd's: derived from the peer URLs and the current time, so a
// removed ID is never handed out again.
func (m *Member) AddMember(ctx context.Context, peerURLs []string, learner bool) (*etcdserverpb.Member, []*etcdserverpb.Member, error) {
	resp, err := m.changeMembers(ctx, opAdd, &etcdserverpb.MemberAddRequest{PeerURLs: peerURLs, IsLearner: learner})
	if err != nil {
		return nil, nil, err
	}
	return resp.GetMember(), resp.GetMembers(), nil
}

// RemoveMember removes member id and returns the membership after it. When
// id is the leader, leadership is handed to another voter first.
func (m *Member) RemoveMember(ctx context.Context, id uint64) ([]*etcdserverpb.Member, error) {
	resp, err := m.changeMembers(ctx, opRemove, &etcdserverpb.MemberRemoveRequest{ID: id})
	return resp.GetMembers(), err
}

// UpdateMember replaces member id's peer URLs.
func (m *Member) UpdateMember(ctx context.Context, id uint64, peerURLs []string) ([]*etcdserverpb.Member, error) {
	resp, err := m.changeMembers(ctx, opUpdate, &etcdserverpb.MemberUpdateRequest{ID: id, PeerURLs: peerURLs})
	return resp.GetMembers(), err
}

// PromoteMember makes learner id a voting member, once it is in sync with
// the leader.
func (m *Member) PromoteMember(ctx context.Context, id uint64) ([]*etcdserverpb.Member, error) {
	resp, err := m.changeMembers(ctx, opPromote, &etcdserverpb.MemberPromoteRequest{ID: id})
	return resp.GetMembers(), err
}

// changeMembers carries out a change on the leader: here if this member
// leads, else forwarded over the peer transport. Only the leader knows how
// far a learner got and whether raft would drop the change.
func (m *Member) changeMembers(ctx context.Context, op string, req proto.Message) (*etcdserverpb.MemberAddResponse, error) {
	lead := m.node.Leader()
	if r, ok := req.(*etcdserverpb.MemberRemoveRequest); ok && lead != 0 && r.GetID() == lead && lead != m.id {
		// Removing the leader: take leadership here first (a voter can
		// ask for it), so the change is neither forwarded to the member
		// that goes away nor left to an election after it.
		if m.mayTakeOverToRemove(lead) {
			m.moveLeadership(ctx, lead, m.id)
			lead = m.node.Leader()
		}
	}
	switch lead {
	case 0:
		return nil, raftnode.ErrNoLeader
	case m.id:
		return m.changeLocally(ctx, op, req)
	}
	body, err := proto.Marshal(req)
	if err != nil {
		return nil, err
	}
	out, err := m.tr.ForwardMemberChange(ctx, lead, op, body)
	var re *transport.RemoteError
	if errors.As(err, &re) {
		if known := membership.ErrorFromText(re.Msg, nodeErrors...); known != nil {
			return nil, known
		}
		return nil, errors.New(re.Msg)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		m.log.Warn("forwarding a membership change to the leader failed", "leader", fmt.Sprintf("%x", lead), "err", err)
		return nil, raftnode.ErrLeaderLost
	}
	resp := &etcdserverpb.MemberAddResponse{}
	if err := proto.Unmarshal(out, resp); err != nil {
		return nil, fmt.Errorf("server: decode forwarded membership response: %w", err)
	}
	return resp, nil
}

// MemberChange serves a change another member forwarded (transport.Membership).
// Errors travel as text: a known sentinel's own text, so the caller maps
// it back.
func (m *Member) MemberChange(ctx context.Context, op string, body []byte) ([]byte, error) {
	var req proto.Message
	switch op {
	case opAdd:
		req = &etcdserverpb.MemberAddRequest{}
	case opRemove:
		req = &etcdserverpb.MemberRemoveRequest{}
	case opUpdate:
		req = &etcdserverpb.MemberUpdateRequest{}
	case opPromote:
		req = &etcdserverpb.MemberPromoteRequest{}
	default:
		return nil, fmt.Errorf("server: unknown membership operation %q", op)
	}
	if err := proto.Unmarshal(body, req); err != nil {
		return nil, err
	}
	resp, err := m.changeLocally(ctx, op, req)
	if err != nil {
		if known := membership.Known(err, nodeErrors...); known != nil {
			return nil, known
		}
		return nil, err
	}
	return proto.Marshal(resp)
}

// MemberList answers a joining member (transport.Membership): the cluster
// ID and this member's view of the membership.
func (m *Member) MemberList(context.Context) ([]byte, error) {
	return proto.Marshal(&etcdserverpb.MemberListResponse{Header: m.Header(), Members: m.sm.Members().List()})
}

// mayTakeOverToRemove reports whether this member should take leadership
// before removing the leader lead: it is a voter, and the strict check, as
// far as this member sees, would let the removal through (otherwise the
// leader decides and refuses, and leadership stays where it is).
func (m *Member) mayTakeOverToRemove(lead uint64) bool {
	self, ok := m.sm.Members().Get(m.id)
	if !ok || self.GetIsLearner() {
		return false
	}
	return !m.cfg.StrictReconfigCheck || membership.MayRemove(m.sm.Members().List(), lead, m.health()) == nil
}

func (m *Member) changeLocally(ctx context.Context, op string, req proto.Message) (*etcdserverpb.MemberAddResponse, error) {
	switch r := req.(type) {
	case *etcdserverpb.MemberAddRequest:
		return m.addLocally(ctx, r)
	case *etcdserverpb.MemberRemoveRequest:
		return m.removeLocally(ctx, r.GetID())
	case *etcdserverpb.MemberUpdateRequest:
		return m.updateLocally(ctx, r)
	case *etcdserverpb.MemberPromoteRequest:
		return m.promoteLocally(ctx, r.GetID())
	}
	return nil, fmt.Errorf("server: unknown membership operation %q", op)
}

func (m *Member) health() membership.Health {
	return membership.Health{Self: m.id, ActiveSince: m.tr.ActiveSince, Now: time.Now()}
}

func (m *Member) addLocally(ctx context.Context, r *etcdserverpb.MemberAddRequest) (*etcdserverpb.MemberAddResponse, error) {
	if err := checkPeerURLs(r.GetPeerURLs()); err != nil {
		return nil, err
	}
	if m.cfg.StrictReconfigCheck {
		if err := membership.MayAdd(m.sm.Members().List(), r.GetIsLearner(), m.health()); err != nil {
			m.log.Warn("rejecting member add request", "peer-urls", r.GetPeerURLs(), "err", err)
			return nil, err
		}
	}
	// etcd's NewMember: peer URLs, an empty cluster name and the time. A
	// second add of the same URLs within one second would get the same ID;
	// step the time forward past IDs in use or removed rather than fail.
	now := time.Now()
	id := MemberID(r.GetPeerURLs(), "", &now)
	for i := 0; i < 8 && m.idTaken(id); i++ {
		now = now.Add(time.Second)
		id = MemberID(r.GetPeerURLs(), "", &now)
	}
	mem := &etcdserverpb.Member{ID: id, PeerURLs: r.GetPeerURLs(), IsLearner: r.GetIsLearner()}
	ctxBytes, err := proto.Marshal(mem)
	if err != nil {
		return nil, err
	}
	typ := raftpb.ConfChangeType_ConfChangeAddNode
	if r.GetIsLearner() {
		typ = raftpb.ConfChangeType_ConfChangeAddLearnerNode
	}
	return m.configure(ctx, &raftpb.ConfChange{Type: typ.Enum(), NodeId: proto.Uint64(id), Context: ctxBytes})
}

func (m *Member) idTaken(id uint64) bool {
	_, ok := m.sm.Members().Get(id)
	return ok || m.sm.Members().IsRemoved(id)
}

func (m *Member) removeLocally(ctx context.Context, id uint64) (*etcdserverpb.MemberAddResponse, error) {
	if m.cfg.StrictReconfigCheck {
		if err := membership.MayRemove(m.sm.Members().List(), id, m.health()); err != nil {
			m.log.Warn("rejecting member remove request", "member-id", fmt.Sprintf("%x", id), "err", err)
			return nil, err
		}
	}
	if id == m.id && m.node.IsLeader() {
		if _, ok := m.sm.Members().Get(id); ok && m.handOffLeadership(ctx) {
			// Someone else leads now: let the new leader carry the change.
			return m.changeMembers(ctx, opRemove, &etcdserverpb.MemberRemoveRequest{ID: id})
		}
	}
	return m.configure(ctx, &raftpb.ConfChange{Type: raftpb.ConfChangeType_ConfChangeRemoveNode.Enum(), NodeId: proto.Uint64(id)})
}

// handOffLeadership moves leadership to the voter this member has been
// connected to longest (etcd's choice for MoveLeader on shutdown) and waits,
// at most a few election timeouts, until another member leads. It reports
// whether one does; if not, the removal goes ahead anyway and raft makes the
// leader step down when the change applies.
func (m *Member) handOffLeadership(ctx context.Context) bool {
	var best uint64
	var oldest time.Time
	for _, v := range membership.Voters(m.sm.Members().List()) {
		t := m.tr.ActiveSince(v.GetID())
		if v.GetID() == m.id || t.IsZero() {
			continue
		}
		if best == 0 || t.Before(oldest) {
			best, oldest = v.GetID(), t
		}
	}
	if best == 0 {
		return false
	}
	return m.moveLeadership(ctx, m.id, best)
}

// moveLeadership asks raft to move leadership from the leader from to the
// voter to and waits, at most a few election timeouts, until someone other
// than from leads. It reports whether that happened.
func (m *Member) moveLeadership(ctx context.Context, from, to uint64) bool {
	m.log.Info("transferring leadership before removing the leader", "leader", fmt.Sprintf("%x", from),
		"transferee", fmt.Sprintf("%x", to))
	wait, cancel := context.WithTimeout(ctx, 3*m.cfg.ElectionTimeout)
	defer cancel()
	for {
		changed := m.node.LeaderChanged()
		if l := m.node.Leader(); l != 0 && l != from {
			return true
		}
		if err := m.node.TransferLeadership(wait, to); err != nil {
			return false
		}
		select {
		case <-changed:
		case <-wait.Done():
			return false
		}
	}
}

func (m *Member) updateLocally(ctx context.Context, r *etcdserverpb.MemberUpdateRequest) (*etcdserverpb.MemberAddResponse, error) {
	if err := checkPeerURLs(r.GetPeerURLs()); err != nil {
		return nil, err
	}
	ctxBytes, err := proto.Marshal(&etcdserverpb.Member{ID: r.GetID(), PeerURLs: r.GetPeerURLs()})
	if err != nil {
		return nil, err
	}
	return m.configure(ctx, &raftpb.ConfChange{Type: raftpb.ConfChangeType_ConfChangeUpdateNode.Enum(),
		NodeId: proto.Uint64(r.GetID()), Context: ctxBytes})
}

func (m *Member) promoteLocally(ctx context.Context, id uint64) (*etcdserverpb.MemberAddResponse, error) {
	if err := m.learnerReady(ctx, id); err != nil {
		return nil, err
	}
	if m.cfg.StrictReconfigCheck {
		if err := membership.MayPromote(m.sm.Members().List()); err != nil {
			return nil, err
		}
	}
	return m.configure(ctx, &raftpb.ConfChange{Type: raftpb.ConfChangeType_ConfChangeAddNode.Enum(), NodeId: proto.Uint64(id)})
}

// learnerReady checks, on the leader, that id is a learner whose log is in
// sync with the leader's.
func (m *Member) learnerReady(ctx context.Context, id uint64) error {
	mem, ok := m.sm.Members().Get(id)
	if !ok {
		if m.sm.Members().IsRemoved(id) {
			return membership.ErrIDRemoved
		}
		return membership.ErrIDNotFound
	}
	if !mem.GetIsLearner() {
		return membership.ErrMemberNotLearner
	}
	st, err := m.node.Status(ctx)
	if err != nil {
		return err
	}
	if st.RaftState != raft.StateLeader || st.Progress == nil {
		return raftnode.ErrLeaderChanged
	}
	pr, found := st.Progress[id]
	var match uint64
	if found {
		match = pr.Match
	}
	err = membership.LearnerReady(match, st.Progress[m.id].Match, found)
	if err != nil {
		m.log.Warn("rejecting promote learner: learner is not ready", "member-id", fmt.Sprintf("%x", id),
			"learner-match", match, "leader-match", st.Progress[m.id].Match)
	}
	return err
}

// configure proposes cc and waits until it is applied here.
func (m *Member) configure(ctx context.Context, cc *raftpb.ConfChange) (*etcdserverpb.MemberAddResponse, error) {
	res, err := m.node.ProposeConfChange(ctx, cc)
	if err != nil {
		return nil, err
	}
	if res.Err != nil {
		return nil, res.Err
	}
	resp, ok := res.Resp.(*etcdserverpb.MemberAddResponse)
	if !ok {
		return nil, fmt.Errorf("server: unexpected result %T of a configuration change", res.Resp)
	}
	m.log.Info("applied a configuration change through raft", "type", cc.GetType().String(),
		"member-id", fmt.Sprintf("%x", cc.GetNodeId()))
	return resp, nil
}

// removedFromCluster stops this member once the cluster removed it: its own
// removal was applied, or a peer refused it as removed. The stop waits a
// second (as etcd) so that the answer to the removal and the leader's
// commit reach the others first.
func (m *Member) removedFromCluster() {
	m.removedOnce.Do(func() {
		m.removed.Store(true)
		m.log.Error(transport.ErrMemberRemoved.Error() + "; stopping")
		go func() {
			select {
			case <-time.After(time.Second):
			case <-m.stopped:
			}
			m.Stop()
		}()
	})
}

// Removed reports whether this member stopped (or is stopping) because the
// cluster removed it.
func (m *Member) Removed() bool { return m.removed.Load() }

// PeerActiveSince reports since when this member's link to peer id has been
// up, or the zero time while it is down: what the strict reconfiguration
// checks go by (etcd's "active since").
func (m *Member) PeerActiveSince(id uint64) time.Time { return m.tr.ActiveSince(id) }

// checkPeerURLs validates the peer URLs of a MemberAdd or MemberUpdate as
// etcd's types.NewURLs does: at least one, each scheme://host:port with an
// http, https, unix or unixs scheme and no path.
func checkPeerURLs(urls []string) error {
	if len(urls) == 0 {
		return membership.ErrBadPeerURLs
	}
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return membership.ErrBadPeerURLs
		}
		switch u.Scheme {
		case "http", "https", "unix", "unixs":
		default:
			return membership.ErrBadPeerURLs
		}
	}
	return nil
}
