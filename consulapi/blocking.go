package consulapi

import (
	"context"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// watchSpec is a key, or a prefix, whose changes may change a query's
// answer: a blocking query wakes on an event under any of its specs.
type watchSpec struct {
	key    string
	prefix bool
}

// queryFunc computes a read's answer at a consistency mode: its index
// (X-Consul-Index) and the value to send.
type queryFunc func(ctx context.Context, mode string) (index uint64, obj any, err error)

// blockingQuery is the one way every read endpoint answers, blocking or
// not (Consul's blockingquery.Query over etcd watches). It runs query
// once; with ?index=N and an answer whose index is not above N it waits
// for an event under specs from revision N+1 (never polls), runs query
// again on each, and returns as soon as the index passes N, or with the
// last answer when the wait (default 5 min, capped at 10 min, plus up to
// 1/16 of it at random, as Consul's jitter) is over. An index above the
// store's is not reset: as in Consul, the query waits until the index
// passes it. Concurrent blocking queries are bounded per client address and
// in all (429 over either). It writes the read's headers.
func (s *Server) blockingQuery(w http.ResponseWriter, r *http.Request, specs []watchSpec, query queryFunc) (any, error) {
	q, err := parseQuery(r)
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	idx, obj, err := query(ctx, q.mode)
	if err != nil || q.index == 0 || idx > q.index {
		return s.answer(w, q, idx, obj, err)
	}
	release, err := s.blocking.acquire(clientIP(r))
	if err != nil {
		return nil, err
	}
	defer release()
	ctx, cancel := context.WithTimeout(ctx, s.waitTime(q.wait))
	defer cancel()
	events := s.watchAll(ctx, specs, int64(min(q.index, math.MaxInt64-1))+1) // an index past any revision waits out its wait
	for {
		select {
		case <-ctx.Done():
			if r.Context().Err() != nil {
				return nil, r.Context().Err() // the client went away
			}
			return s.answer(w, q, idx, obj, nil)
		case <-events:
		}
		drain(events)
		nidx, nobj, err := query(r.Context(), q.mode)
		if err != nil {
			return nil, err
		}
		idx, obj = nidx, nobj
		if idx > q.index {
			return s.answer(w, q, idx, obj, nil)
		}
	}
}

func (s *Server) answer(w http.ResponseWriter, q queryOptions, idx uint64, obj any, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	s.setMeta(w, idx, q.mode)
	return obj, nil
}

// waitTime is Consul's query timeout: the asked wait or the default, capped,
// plus a random stagger of up to a sixteenth of it.
func (s *Server) waitTime(wait time.Duration) time.Duration {
	lim := s.cfg.Limits
	if wait <= 0 {
		wait = lim.DefaultWait
	}
	if wait > lim.MaxWait {
		wait = lim.MaxWait
	}
	if j := int64(wait / 16); j > 0 {
		wait += time.Duration(rand.Int64N(j))
	}
	return wait
}

// watchAll watches every spec from rev until ctx ends; the returned channel
// gets a value (never blocking the watchers) whenever any of them sees an
// event. A watch whose start was compacted away starts again from the
// oldest revision kept: it may replay changes the answer already holds (a
// harmless extra run), but it misses none. A watch that ends (no leader for
// a moment) starts again from the first revision it has not seen.
func (s *Server) watchAll(ctx context.Context, specs []watchSpec, rev int64) <-chan struct{} {
	ch := make(chan struct{}, 1)
	wake := func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	for _, sp := range specs {
		go s.watchOne(clientv3.WithRequireLeader(ctx), sp, rev, wake)
	}
	return ch
}

func (s *Server) watchOne(ctx context.Context, sp watchSpec, rev int64, wake func()) {
	for ctx.Err() == nil {
		opts := []clientv3.OpOption{clientv3.WithRev(rev)}
		if sp.prefix {
			opts = append(opts, clientv3.WithPrefix())
		}
		for resp := range s.cfg.Watcher.Watch(ctx, sp.key, opts...) {
			if resp.CompactRevision > 0 {
				rev = resp.CompactRevision
				break
			}
			for _, ev := range resp.Events {
				rev = max(rev, ev.Kv.ModRevision+1)
			}
			if len(resp.Events) > 0 {
				wake()
			}
		}
		// Compacted, or the watch ended (the member lost its leader for a
		// moment): watch again from the first revision not seen, so the
		// query neither misses a change nor sleeps out its wait deaf.
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func drain(ch <-chan struct{}) {
	select {
	case <-ch:
	default:
	}
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// limiter bounds concurrent blocking queries per client address and in all.
type limiter struct {
	mu        sync.Mutex
	perClient int
	total     int
	n         int
	byClient  map[string]int
}

func newLimiter(perClient, total int) *limiter {
	return &limiter{perClient: perClient, total: total, byClient: map[string]int{}}
}

// acquire takes a slot for client, or fails with Consul's 429.
func (l *limiter) acquire(client string) (release func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byClient[client] >= l.perClient {
		return nil, &HTTPError{Code: http.StatusTooManyRequests,
			Reason: "Your IP is issuing too many concurrent blocking queries, please rate limit your calls\n"}
	}
	if l.n >= l.total {
		return nil, &HTTPError{Code: http.StatusTooManyRequests, Reason: "rate limit exceeded: too many blocking queries in progress\n"}
	}
	l.n++
	l.byClient[client]++
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.n--
		if l.byClient[client]--; l.byClient[client] == 0 {
			delete(l.byClient, client)
		}
	}, nil
}
