package etcdapi

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/lease"
	"github.com/synod-db/synod/raftnode"
)

// Bounds of the keep-alive coalescing (Renewer).
const (
	// maxRenewalsPerEntry bounds the checkpoints of one raft entry (each is
	// ~12 bytes on the wire and one 16-byte record write on apply).
	maxRenewalsPerEntry = 1024
	// maxRenewalsQueued bounds the renewals waiting for an entry; beyond it
	// a keep-alive fails with ErrTooManyRequests, as a full proposal queue.
	maxRenewalsQueued = 16384
	// maxRenewalEntriesInFlight bounds the renewal entries this member has
	// proposed (or batches it has handed to the leader) and not yet seen
	// applied. While one is in flight, new renewals queue and go together
	// into the next entry: every renewal that arrives during an entry's
	// round trip shares the following one. (Two in flight split them over
	// 1.6x the entries, for about 12% more CPU per keep-alive under etcd's
	// lease-keepalive benchmark.)
	maxRenewalEntriesInFlight = 1
	// refusedRetry is how long a follower proposes its renewals itself
	// after its leader refused to take them (an older release, in a
	// rolling upgrade) before it offers that leader a batch again.
	refusedRetry = 30 * time.Second
)

// Renewer coalesces the keep-alives a member receives into few raft
// entries: each entry is one LeaseCheckpoint carrying many renewals (as
// etcd's LeaseCheckpointRequest allows), and every renewal in it is answered
// once the entry has applied, from that entry's outcome. A renewal is still
// a raft entry applied in log order on every member, so the lease guarantees
// (docs/leases.md) are those of a single renewal.
//
// A follower does not propose its batch: it hands it to the leader's
// Renewer (RenewalForwarder), whose next entry carries it with the leader's
// own renewals and its other followers', so one entry per round renews for
// the whole cluster. The follower answers from the outcome on the leader.
// It proposes the batch itself when it knows no leader, when it leads, when
// the leader refused (ErrRenewalsNotServed, remembered for refusedRetry) or
// when the hand-over failed: a renewal that the leader applied after all is
// then applied twice, which only renews the lease twice.
type Renewer struct {
	cfg RenewerConfig

	mu        sync.Mutex
	queue     []*renewal
	inFlight  int       // flushers running (each has at most one entry in flight)
	refused   uint64    // the last leader that refused a batch
	refusedAt time.Time // when it did

	proposed, handedOver, served atomic.Uint64 // RenewerStats
}

// RenewerStats count what a Renewer did since it was made.
type RenewerStats struct {
	// Proposed counts the renewal entries this member proposed.
	Proposed uint64
	// HandedOver counts the batches this member handed to its leader
	// (whatever the outcome).
	HandedOver uint64
	// Served counts the batches followers handed to this member.
	Served uint64
}

// Stats returns the counters.
func (r *Renewer) Stats() RenewerStats {
	return RenewerStats{Proposed: r.proposed.Load(), HandedOver: r.handedOver.Load(), Served: r.served.Load()}
}

// RenewerConfig configures a Renewer.
type RenewerConfig struct {
	// Raft proposes the renewal entries. Required.
	Raft Proposer
	// Leader tells who leads. With Forwarder nil it may be nil.
	Leader Leader
	// Self is this member's ID.
	Self uint64
	// Forwarder hands a follower's batch to the leader; nil proposes every
	// batch locally.
	Forwarder RenewalForwarder
	// Timeout bounds a hand-over to the leader (the member's request
	// timeout); a batch not answered by then is proposed locally.
	Timeout time.Duration
	// Now is the clock of refusedRetry; nil means time.Now.
	Now func() time.Time
}

// Proposer replicates a request through raft (Raft does).
type Proposer interface {
	// Propose is Raft.Propose.
	Propose(ctx context.Context, req *pb.InternalRaftRequest) (proto.Message, error)
}

// RenewalForwarder hands a follower's batch of renewals to the leader.
type RenewalForwarder interface {
	// ForwardRenewals asks member leader to renew the leases of cps (each
	// once, Remaining_TTL the granted TTL) in its next renewal entry
	// (Renewer.RenewForPeer there) and returns, once that entry has applied
	// on the leader, the IDs it found missing. An error wrapping
	// ErrRenewalsNotServed means the leader does not take renewals; any
	// other error leaves the outcome unknown.
	ForwardRenewals(ctx context.Context, leader uint64, cps *pb.LeaseCheckpointRequest) (missing []int64, err error)
}

// ErrRenewalsNotServed is the leader's refusal of a batch of renewals: its
// release does not serve them (gRPC Unimplemented on the peer service).
var ErrRenewalsNotServed = errors.New("etcdapi: the leader does not take renewals from its followers")

// NewRenewer returns a Renewer with nothing queued.
func NewRenewer(cfg RenewerConfig) *Renewer {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Renewer{cfg: cfg}
}

// renewal is one keep-alive waiting for its entry.
type renewal struct {
	id, ttl int64
	forPeer bool  // handed over by a follower: never handed on
	renewed bool  // the lease existed when the entry applied
	err     error // the entry failed (not applied, or unknown outcome)
	// done receives the renewal once renewed and err are set. It must have
	// room: the renewer never waits on it.
	done chan<- *renewal

	// The stream's answer, in the same allocation: its header is taken
	// before renewing.
	hdr  pb.ResponseHeader
	resp pb.LeaseKeepAliveResponse
}

// finish records the outcome and hands the renewal back.
func (w *renewal) finish(renewed bool, err error) {
	w.renewed, w.err = renewed, err
	w.done <- w
}

// start queues w (lease w.id, granted TTL w.ttl) for the next renewal entry;
// w comes back on w.done once that entry applied, reporting whether the
// lease existed then. A full queue refuses it with ErrTooManyRequests.
func (r *Renewer) start(w *renewal) error {
	return r.startAll([]*renewal{w})
}

// startAll queues every renewal of ws, or none if they do not all fit.
func (r *Renewer) startAll(ws []*renewal) error {
	r.mu.Lock()
	if len(r.queue)+len(ws) > maxRenewalsQueued {
		r.mu.Unlock()
		return raftnode.ErrTooManyRequests
	}
	r.queue = append(r.queue, ws...)
	spawn := r.inFlight < maxRenewalEntriesInFlight
	if spawn {
		r.inFlight++
	}
	r.mu.Unlock()
	if spawn {
		go r.flush()
	}
	return nil
}

// RenewForPeer renews, in this member's next renewal entry, the leases a
// follower handed over (ForwardRenewals there) and returns, once the entry
// applied here, the IDs it found missing. A member that does not lead
// refuses with raftnode.ErrNotLeader (the follower then proposes them
// itself); a full queue with ErrTooManyRequests.
func (r *Renewer) RenewForPeer(ctx context.Context, cps []*pb.LeaseCheckpoint) ([]int64, error) {
	if r.cfg.Leader == nil || r.cfg.Leader.Leader() != r.cfg.Self {
		return nil, raftnode.ErrNotLeader
	}
	done := make(chan *renewal, len(cps))
	ws := make([]renewal, len(cps)) // one allocation for the batch
	batch := make([]*renewal, len(cps))
	for i, cp := range cps {
		ws[i] = renewal{id: cp.GetID(), ttl: cp.GetRemaining_TTL(), forPeer: true, done: done}
		batch[i] = &ws[i]
	}
	if err := r.startAll(batch); err != nil {
		return nil, err
	}
	r.served.Add(1)
	var missing []int64
	for range cps {
		select {
		case w := <-done:
			if w.err != nil {
				return nil, w.err
			}
			if !w.renewed {
				missing = append(missing, w.id)
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return missing, nil
}

// flush renews the queued renewals, up to maxRenewalsPerEntry per entry,
// one entry at a time, until the queue is empty.
func (r *Renewer) flush() {
	for {
		r.mu.Lock()
		n := min(len(r.queue), maxRenewalsPerEntry)
		if n == 0 {
			r.inFlight--
			r.mu.Unlock()
			return
		}
		batch := make([]*renewal, n)
		copy(batch, r.queue)
		rest := copy(r.queue, r.queue[n:])
		clear(r.queue[rest:])
		r.queue = r.queue[:rest]
		r.mu.Unlock()
		r.renew(batch)
	}
}

// renew hands batch to the leader when it can, else proposes it, and
// answers every renewal in it.
func (r *Renewer) renew(batch []*renewal) {
	cps := checkpoints(batch)
	if leader := r.handOverTo(batch); leader != 0 {
		missing, err := r.forward(leader, cps)
		if err == nil {
			answer(batch, missing, nil)
			return
		}
		if errors.Is(err, ErrRenewalsNotServed) {
			r.noteRefused(leader)
		}
	}
	r.proposed.Add(1)
	missing, err := proposeRenewals(r.cfg.Raft, cps)
	answer(batch, missing, err)
}

// handOverTo returns the leader to hand batch to, 0 to propose it here: no
// forwarder, no leader known, this member leads, the leader refused
// recently, or the batch holds renewals a follower handed over.
func (r *Renewer) handOverTo(batch []*renewal) uint64 {
	if r.cfg.Forwarder == nil {
		return 0
	}
	leader := r.cfg.Leader.Leader()
	if leader == 0 || leader == r.cfg.Self {
		return 0
	}
	for _, w := range batch {
		if w.forPeer {
			return 0
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if leader == r.refused && r.cfg.Now().Sub(r.refusedAt) < refusedRetry {
		return 0
	}
	return leader
}

// noteRefused remembers that leader refused a batch.
func (r *Renewer) noteRefused(leader uint64) {
	r.mu.Lock()
	r.refused, r.refusedAt = leader, r.cfg.Now()
	r.mu.Unlock()
}

// forward hands cps to leader, giving up after the timeout or once the
// leader changes (the batch is then proposed here).
func (r *Renewer) forward(leader uint64, cps *pb.LeaseCheckpointRequest) ([]int64, error) {
	r.handedOver.Add(1)
	changed := r.cfg.Leader.LeaderChanged()
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.Timeout)
	defer cancel()
	go func() {
		select {
		case <-changed:
			cancel()
		case <-ctx.Done():
		}
	}()
	return r.cfg.Forwarder.ForwardRenewals(ctx, leader, cps)
}

// checkpoints is the LeaseCheckpoint entry renewing batch's leases, each
// once.
func checkpoints(batch []*renewal) *pb.LeaseCheckpointRequest {
	cps := make([]*pb.LeaseCheckpoint, 0, len(batch))
	all := make([]pb.LeaseCheckpoint, len(batch)) // one allocation for the entry's checkpoints
	seen := make(map[int64]bool, len(batch))
	for _, w := range batch {
		if !seen[w.id] {
			seen[w.id] = true
			cp := &all[len(cps)]
			cp.ID, cp.Remaining_TTL = w.id, w.ttl
			cps = append(cps, cp)
		}
	}
	return &pb.LeaseCheckpointRequest{Checkpoints: cps}
}

// proposeRenewals proposes cps as one entry and returns the leases it found
// missing, or the error that kept it from applying. The proposal does not
// inherit any one client's context: it is bounded by the member's request
// timeout.
func proposeRenewals(srv Proposer, cps *pb.LeaseCheckpointRequest) ([]int64, error) {
	_, err := srv.Propose(context.Background(), &pb.InternalRaftRequest{LeaseCheckpoint: cps})
	var me *lease.MissingError
	if errors.As(err, &me) {
		return me.IDs, nil // applied: the leases it names did not exist, the others are renewed
	}
	return nil, err
}

// answer answers every renewal of batch: renewed unless its lease is in
// missing, or failed with err.
func answer(batch []*renewal, missing []int64, err error) {
	var gone map[int64]bool
	if len(missing) > 0 {
		gone = make(map[int64]bool, len(missing))
		for _, id := range missing {
			gone[id] = true
		}
	}
	for _, w := range batch {
		w.finish(err == nil && !gone[w.id], err)
	}
}
