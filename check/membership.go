package check

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// removedExitWait is how long a removed member has to stop on its own
// before the checker kills it.
const removedExitWait = 10 * time.Second

// memberNemesis removes a member (sometimes the leader) from the cluster,
// discards its data directory and, on heal, adds it back as a new member
// (a new ID: IDs are never reused) with an empty data directory, started
// with --initial-cluster-state existing; half of the time it joins as a
// learner and is promoted once in sync.
type memberNemesis struct{}

func (memberNemesis) Name() string { return "member" }

func (memberNemesis) Inject(ctx context.Context, env *Env, rng *rand.Rand) (Fault, error) {
	n := env.Cluster.Size()
	if n < 2 {
		return Fault{}, fmt.Errorf("removing a member needs at least 2: %w", ErrUnsupported)
	}
	for i := 0; i < n; i++ {
		if env.Cluster.Removed(i) {
			// A heal that did not finish: finish it instead.
			if err := env.Rejoin(ctx, i, false); err != nil {
				return Fault{}, fmt.Errorf("m%d is still removed: %w", i+1, err)
			}
			return Fault{Desc: fmt.Sprintf("m%d, left removed by an earlier heal, rejoined", i+1)}, nil
		}
	}
	i, who := victim(ctx, env, rng, false)
	learner := rng.Intn(2) == 0
	via := (i + 1 + rng.Intn(n-1)) % n
	id, err := env.removeMember(ctx, i, via)
	if err != nil {
		return Fault{}, err
	}
	byItself, err := env.Cluster.Discard(i, removedExitWait)
	if err != nil {
		return Fault{}, err
	}
	desc := fmt.Sprintf("removed %s (ID %x) through m%d, data discarded", who, id, via+1)
	if !byItself {
		desc += fmt.Sprintf("; it did not stop within %v and was killed", removedExitWait)
	}
	how := "a voter"
	if learner {
		how = "a learner, then promoted"
	}
	desc += "; on heal it rejoins as a new member, " + how
	return Fault{Desc: desc, Heal: func(ctx context.Context) error { return env.Rejoin(ctx, i, learner) }}, nil
}

// memberByPeerURL finds the member with the given peer URL in a member list.
func memberByPeerURL(ms []*etcdserverpb.Member, url string) *etcdserverpb.Member {
	for _, m := range ms {
		if slices.Contains(m.PeerURLs, url) {
			return m
		}
	}
	return nil
}

// removeMember removes member i through member via's client and returns
// the removed ID. A removal whose outcome is not known is settled by
// reading the member list.
func (e *Env) removeMember(ctx context.Context, i, via int) (uint64, error) {
	cli := e.Admin(via)
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	list, err := cli.MemberList(lctx)
	cancel()
	if err != nil {
		return 0, fmt.Errorf("listing members through m%d: %w", via+1, err)
	}
	m := memberByPeerURL(list.Members, e.Cluster.PeerURL(i))
	if m == nil {
		return 0, fmt.Errorf("m%d is not in the member list", i+1)
	}
	e.Cluster.ExpectExit(i)
	// The strict reconfiguration check refuses while the leader has not
	// been connected to the others for a few seconds (after an earlier
	// fault): retry that refusal for a while.
	for try := 0; ; try++ {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err = cli.MemberRemove(rctx, m.ID)
		cancel()
		if !errors.Is(err, rpctypes.ErrUnhealthy) || try == 20 || !sleepCtx(ctx, 500*time.Millisecond) {
			break
		}
	}
	if err == nil || errors.Is(err, rpctypes.ErrMemberNotFound) {
		e.forgetID(i)
		return m.ID, nil
	}
	// Settle the outcome through any other member, retrying for a while:
	// guessing wrong either way is costly (a removed member's exit taken
	// for a crash, or a voter's data discarded).
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		removed, lerr := e.isRemoved(ctx, i)
		if lerr == nil && removed {
			e.forgetID(i)
			return m.ID, nil
		}
		if lerr == nil {
			break
		}
		if !sleepCtx(ctx, 500*time.Millisecond) {
			break
		}
	}
	e.Cluster.expectNoExit(i)
	return 0, fmt.Errorf("removing m%d (%x) through m%d: %w", i+1, m.ID, via+1, err)
}

// isRemoved reads the member list through a member other than i and
// reports whether member i's peer URL is gone from it.
func (e *Env) isRemoved(ctx context.Context, i int) (bool, error) {
	via, err := e.otherRunning(i)
	if err != nil {
		return false, err
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	list, err := e.Admin(via).MemberList(lctx)
	if err != nil {
		return false, err
	}
	return memberByPeerURL(list.Members, e.Cluster.PeerURL(i)) == nil, nil
}

// forgetID drops member i's recorded ID (it was removed; its successor will
// have a new one).
func (e *Env) forgetID(i int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ids[i] = 0
}

// Rejoin brings a removed member back as a new member: it is added (as a
// learner if learner is set) unless the list already has its peer URL,
// started with an empty data directory, and promoted if it is a learner.
// Every step is retried until ctx ends (strict reconfiguration checks refuse
// changes while the cluster is not fully connected), and each is
// idempotent, so an interrupted Rejoin can be called again.
func (e *Env) Rejoin(ctx context.Context, i int, learner bool) error {
	var last error
	for {
		done, err := e.rejoinStep(ctx, i, learner)
		if done {
			return nil
		}
		if err != nil {
			last = err
		}
		if !sleepCtx(ctx, 200*time.Millisecond) {
			return fmt.Errorf("m%d did not rejoin: %w", i+1, errors.Join(ctx.Err(), last))
		}
	}
}

// rejoinStep takes the next step of Rejoin; done when member i is a running
// voter.
func (e *Env) rejoinStep(ctx context.Context, i int, learner bool) (bool, error) {
	via, err := e.otherRunning(i)
	if err != nil {
		return false, err
	}
	cli := e.Admin(via)
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	list, err := cli.MemberList(cctx)
	if err != nil {
		return false, fmt.Errorf("listing members through m%d: %w", via+1, err)
	}
	url := e.Cluster.PeerURL(i)
	m := memberByPeerURL(list.Members, url)
	switch {
	case m == nil && e.Cluster.members[i].running():
		return false, fmt.Errorf("m%d runs but is not a member", i+1)
	case m == nil && learner:
		_, err = cli.MemberAddAsLearner(cctx, []string{url})
	case m == nil:
		_, err = cli.MemberAdd(cctx, []string{url})
	case !e.Cluster.members[i].running():
		err = e.Cluster.StartJoining(i)
	case m.IsLearner:
		_, err = cli.MemberPromote(cctx, m.ID)
	default:
		return true, nil
	}
	return false, err
}

// otherRunning picks a running, unpaused member other than i.
func (e *Env) otherRunning(i int) (int, error) {
	for j := 0; j < e.Cluster.Size(); j++ {
		if j != i && !e.Cluster.Removed(j) && e.Cluster.members[j].running() && !e.Cluster.members[j].isPaused() {
			return j, nil
		}
	}
	return 0, fmt.Errorf("no running member besides m%d", i+1)
}

// RejoinRemoved brings back every member still removed (a heal that did
// not finish in time).
func (e *Env) RejoinRemoved(ctx context.Context) error {
	var errs []error
	for i := 0; i < e.Cluster.Size(); i++ {
		if e.Cluster.Removed(i) {
			errs = append(errs, e.Rejoin(ctx, i, false))
		}
	}
	return errors.Join(errs...)
}

// CheckVoters verifies that the member list names every member as a voter
// and nothing else: what the heal promises.
func (e *Env) CheckVoters(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	list, err := e.Admin(0).MemberList(cctx)
	if err != nil {
		return fmt.Errorf("member list: %w", err)
	}
	if len(list.Members) != e.Cluster.Size() {
		return fmt.Errorf("member list has %d members, want %d", len(list.Members), e.Cluster.Size())
	}
	for i := 0; i < e.Cluster.Size(); i++ {
		m := memberByPeerURL(list.Members, e.Cluster.PeerURL(i))
		switch {
		case m == nil:
			return fmt.Errorf("m%d is not in the member list", i+1)
		case m.IsLearner:
			return fmt.Errorf("m%d is still a learner", i+1)
		}
	}
	return nil
}

// CheckAlarms reports the alarms raised in the cluster, if any. A run
// raises none: CORRUPT means members' histories differ (the members run the
// corruption check, DefaultServeArgs), NOSPACE that a run outgrew the quota.
func (e *Env) CheckAlarms(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	list, err := e.Admin(0).AlarmList(cctx)
	if err != nil {
		return fmt.Errorf("alarm list: %w", err)
	}
	var raised []string
	for _, a := range list.Alarms {
		raised = append(raised, fmt.Sprintf("%s on %x", a.Alarm, a.MemberID))
	}
	if len(raised) > 0 {
		return fmt.Errorf("alarms raised: %s", strings.Join(raised, ", "))
	}
	return nil
}
