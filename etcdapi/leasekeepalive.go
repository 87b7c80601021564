package etcdapi

import (
	"context"
	"errors"
	"io"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/synod-db/synod/raftnode"
)

// maxKeepAlivesInFlight bounds the renewals one keep-alive stream has
// waiting on raft at once; the stream stops reading beyond it.
const maxKeepAlivesInFlight = 128

// LeaseKeepAlive answers every request with {Header, ID, TTL}: TTL is the
// granted TTL once the renewal is applied, 0 if the lease does not exist or
// has already expired on this member. Renewals run concurrently (at most
// maxKeepAlivesInFlight), so answers may come in a different order than the
// requests, which clientv3 matches by ID.
func (s *leaseService) LeaseKeepAlive(stream pb.Lease_LeaseKeepAliveServer) error {
	ctx := stream.Context()
	needLeader := requireLeader(ctx)
	if needLeader {
		// As etcd: a require-leader stream (clientv3's KeepAlive) is refused
		// without a leader and ended once the leader is gone for the grace
		// period, so the client moves to another member.
		if s.e.b.Leader.Leader() == 0 {
			return rpctypes.ErrGRPCNoLeader
		}
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		defer cancel(nil)
		go endWithoutLeader(ctx, s.e.b.Leader, s.grace, func() { cancel(raftnode.ErrNoLeader) })
	}
	who, err := s.e.who(ctx) // the token is verified once, when the stream opens
	if err != nil {
		return toGRPCError(err)
	}
	k := &keepAliveStream{s: s, stream: stream, user: who.User}
	if needLeader {
		k.answers = make(chan *renewal, maxKeepAlivesInFlight)
	} else if ended, err := k.serveFirst(ctx); ended {
		return err
	}
	return k.serve(ctx, receive(ctx, stream))
}

// serveFirst serves the stream's first requests on the handler goroutine
// and reports whether the stream ended (with err). While the stream waits
// for a request with none in flight, nothing but the client can end it
// (only a require-leader stream is ended by the member), so the first
// request is read, renewed and answered here, and the second read here
// too: a KeepAliveOnce (one request, then the client's cancel) costs no
// goroutine and no room for 128 answers. A stream that goes on is served
// concurrently from its second request, started here.
func (k *keepAliveStream) serveFirst(ctx context.Context) (ended bool, err error) {
	k.answers = make(chan *renewal, 1)
	id, ended, err := k.recv()
	if ended {
		return true, err
	}
	if err := k.start(ctx, id); err != nil {
		return true, toGRPCError(err)
	}
	if err := k.serve(ctx, nil); err != nil { // until it is answered
		return true, err
	}
	if id, ended, err = k.recv(); ended {
		return true, err
	}
	// Nothing is in flight, so nothing holds the small channel any more.
	k.answers = make(chan *renewal, maxKeepAlivesInFlight)
	if err := k.start(ctx, id); err != nil {
		return true, toGRPCError(err)
	}
	return false, nil
}

// recv reads the next request's lease ID on the handler goroutine; ended
// reports that the stream ended instead, with err (nil if the client closed
// its side).
func (k *keepAliveStream) recv() (id int64, ended bool, err error) {
	req, err := k.stream.Recv()
	switch {
	case errors.Is(err, io.EOF):
		return 0, true, nil
	case err != nil:
		return 0, true, err
	}
	return req.GetID(), false, nil
}

// keepAliveStream is one LeaseKeepAlive stream. Its handler goroutine does
// all the sending: renewals run in the member's renewer (no goroutine per
// request) and come back on answers.
type keepAliveStream struct {
	s        *leaseService
	stream   pb.Lease_LeaseKeepAliveServer
	user     string
	answers  chan *renewal // room for maxKeepAlivesInFlight: the renewer never waits
	inFlight int           // renewals started and not yet answered
}

// received is one request read from the stream, or the read error that
// ended it (io.EOF when the client closed its side).
type received struct {
	id  int64
	err error
}

// serve starts a renewal for each request and sends each answer as it
// comes, until the client closes its side and every answer is sent, or the
// stream fails.
func (k *keepAliveStream) serve(ctx context.Context, reqs <-chan received) error {
	for reqs != nil || k.inFlight > 0 {
		in := reqs
		if k.inFlight >= maxKeepAlivesInFlight {
			in = nil // stop reading until an answer frees a slot
		}
		select {
		case r := <-in:
			if r.err != nil {
				if !errors.Is(r.err, io.EOF) {
					return r.err
				}
				reqs = nil // answer those in flight, then end
				continue
			}
			if err := k.start(ctx, r.id); err != nil {
				return toGRPCError(err)
			}
		case w := <-k.answers:
			k.inFlight--
			if w.err != nil {
				return toGRPCError(w.err)
			}
			if err := k.send(w); err != nil {
				return err
			}
		case <-ctx.Done():
			return streamErr(ctx)
		}
	}
	return nil
}

// start begins renewing lease id through raft (in an entry shared with the
// other renewals in flight on this member). A lease that has expired on
// this member (its revocation is pending: etcd answers such a lease with TTL
// 0 too, once revoked) is answered TTL 0 at once.
func (k *keepAliveStream) start(ctx context.Context, id int64) error {
	// The header is taken before the renewal (as etcd), so its revision is
	// never above one at which the lease was revoked.
	w := &renewal{id: id, done: k.answers}
	k.s.e.fillHeader(&w.hdr)
	if err := k.s.e.checkLeaseFor(k.user, id, true); err != nil {
		return err
	}
	st, ok := k.s.e.b.Leases.Lookup(id, false)
	switch {
	case !ok:
		// Perhaps granted but not applied here yet: only a ReadIndex tells.
		k.inFlight++
		go k.s.renewUnknown(ctx, w)
		return nil
	case st.Remaining <= 0:
		return k.send(w)
	}
	w.ttl = st.TTL
	if err := k.s.renewals.start(k.s.e.b.Raft, w); err != nil {
		return err
	}
	k.inFlight++
	return nil
}

// send answers w: its granted TTL if renewed, else 0.
func (k *keepAliveStream) send(w *renewal) error {
	w.resp.Header, w.resp.ID = &w.hdr, w.id
	if w.renewed {
		w.resp.TTL = w.ttl
	}
	return k.stream.Send(&w.resp)
}

// renewUnknown renews a lease this member did not know when the request
// came, if a ReadIndex shows it exists and has not expired here; w is handed
// back on its done channel either way.
func (s *leaseService) renewUnknown(ctx context.Context, w *renewal) {
	if err := s.e.b.Raft.ReadIndex(ctx); err != nil {
		w.finish(false, err)
		return
	}
	st, ok := s.e.b.Leases.Lookup(w.id, false)
	if !ok || st.Remaining <= 0 {
		w.finish(false, nil)
		return
	}
	w.ttl = st.TTL
	if err := s.renewals.start(s.e.b.Raft, w); err != nil {
		w.finish(false, err)
	}
}

// receive reads the stream's requests on a goroutine of its own (a Recv
// blocks until the client sends or the stream ends, and the handler must
// stay free to end the stream) and hands them over, then the read error
// that ends it.
func receive(ctx context.Context, stream pb.Lease_LeaseKeepAliveServer) <-chan received {
	reqs := make(chan received)
	go func() {
		for {
			req, err := stream.Recv()
			select {
			case reqs <- received{id: req.GetID(), err: err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return reqs
}

// endWithoutLeader calls abort once the member has had no leader for grace,
// or returns when ctx ends.
func endWithoutLeader(ctx context.Context, lw Leader, grace time.Duration, abort func()) {
	for {
		changed := lw.LeaderChanged()
		if lw.Leader() == 0 {
			t := time.NewTimer(grace)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
				if lw.Leader() == 0 {
					abort()
					return
				}
				continue
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// streamErr is the error a keep-alive stream ends with once ctx is done: the
// cause that cancelled it (no leader), mapped to a gRPC status.
func streamErr(ctx context.Context) error {
	return toGRPCError(context.Cause(ctx))
}
