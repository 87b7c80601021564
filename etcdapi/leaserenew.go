package etcdapi

import (
	"context"
	"errors"
	"sync"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/lease"
	"github.com/synod-db/synod/raftnode"
)

// Bounds of the keep-alive coalescing (renewer).
const (
	// maxRenewalsPerEntry bounds the checkpoints of one raft entry (each is
	// ~12 bytes on the wire and one 16-byte record write on apply).
	maxRenewalsPerEntry = 1024
	// maxRenewalsQueued bounds the renewals waiting for an entry; beyond it
	// a keep-alive fails with ErrTooManyRequests, as a full proposal queue.
	maxRenewalsQueued = 16384
	// maxRenewalEntriesInFlight bounds the renewal entries this member has
	// proposed and not yet seen applied. While one is in flight, new
	// renewals queue and go together into the next entry: every renewal
	// that arrives during an entry's round trip shares the following one.
	// (Two in flight split them over 1.6x the entries, for about 12% more
	// CPU per keep-alive under etcd's lease-keepalive benchmark.)
	maxRenewalEntriesInFlight = 1
)

// renewer coalesces the keep-alives a member receives into few raft
// entries: each entry is one LeaseCheckpoint carrying many renewals (as
// etcd's LeaseCheckpointRequest allows), and every renewal in it is answered
// once the entry has applied, from that entry's outcome. A renewal is still
// a raft entry applied in log order on every member, so the lease guarantees
// (docs/leases.md) are those of a single renewal. The zero value is ready.
type renewer struct {
	mu       sync.Mutex
	queue    []*renewal
	inFlight int // flushers running (each has at most one entry in flight)
}

// proposer replicates a request through raft (Raft does).
type proposer interface {
	// Propose is Raft.Propose.
	Propose(ctx context.Context, req *pb.InternalRaftRequest) (proto.Message, error)
}

// renewal is one keep-alive waiting for its entry.
type renewal struct {
	id, ttl int64
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
func (r *renewer) start(srv proposer, w *renewal) error {
	r.mu.Lock()
	if len(r.queue) >= maxRenewalsQueued {
		r.mu.Unlock()
		return raftnode.ErrTooManyRequests
	}
	r.queue = append(r.queue, w)
	spawn := r.inFlight < maxRenewalEntriesInFlight
	if spawn {
		r.inFlight++
	}
	r.mu.Unlock()
	if spawn {
		go r.flush(srv)
	}
	return nil
}

// flush proposes the queued renewals, up to maxRenewalsPerEntry per entry,
// one entry at a time, until the queue is empty.
func (r *renewer) flush(srv proposer) {
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
		proposeRenewals(srv, batch)
	}
}

// proposeRenewals proposes batch as one LeaseCheckpoint entry (each lease
// once) and answers every renewal in it. The proposal does not inherit any
// one client's context: it is bounded by the member's request timeout.
func proposeRenewals(srv proposer, batch []*renewal) {
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
	req := &pb.InternalRaftRequest{LeaseCheckpoint: &pb.LeaseCheckpointRequest{Checkpoints: cps}}
	_, err := srv.Propose(context.Background(), req)
	var missing map[int64]bool
	var me *lease.MissingError
	if errors.As(err, &me) {
		// Applied: the leases it names did not exist, the others are renewed.
		missing = make(map[int64]bool, len(me.IDs))
		for _, id := range me.IDs {
			missing[id] = true
		}
		err = nil
	}
	for _, w := range batch {
		w.finish(err == nil && !missing[w.id], err)
	}
}
