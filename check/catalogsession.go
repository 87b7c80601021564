package check

import (
	"context"
	"fmt"
	"math/rand"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
)

const (
	// catalogLockKeys is the number of Consul KV keys the lock clients
	// contend for.
	catalogLockKeys = 4
	// catalogSessionTTL is the sessions' TTL (Consul's minimum) and their
	// lock delay. A holder believes it holds its lock until TTL after it
	// last sent an acknowledged renewal (or its create); a session can end
	// earlier (its node's serfHealth turned critical when its member was
	// paused or killed), but the lock delay keeps the key from everyone
	// else for as long again after the release, so no other holder may
	// acquire it while the first still believes.
	catalogSessionTTL = 10 * time.Second
	// catalogHoldFor is the mean time a holder keeps a lock.
	catalogHoldFor = time.Second
)

// catalogHold is one acquisition of a lock, on the client's clock
// (nanoseconds since the start of the run).
type catalogHold struct {
	Key, Session, Client string
	// Acquired is when KV().Acquire returned true.
	Acquired int64
	// Until is when the holder stopped believing: the call of its release
	// or destroy, or TTL after its last acknowledged renewal, whichever came
	// first.
	Until int64
}

// catalogLocks is what the lock clients saw. Safe for concurrent use.
type catalogLocks struct {
	mu        sync.Mutex
	holds     []catalogHold
	anomalies []string
	sessions  int
	unknown   int // acquires of unknown outcome
}

func (l *catalogLocks) add(f func(l *catalogLocks)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f(l)
}

// lockClient contends for the lock keys through random members until ctx
// ends.
func (w *catalogWorkload) lockClient(ctx context.Context, env *Env, i int, rng *rand.Rand) {
	name := fmt.Sprintf("lock client %d", i)
	for ctx.Err() == nil {
		if !w.lockRound(ctx, env, rng, name) {
			sleepCtx(ctx, failureBackoff+time.Duration(rng.Int63n(int64(failureBackoff))))
		}
	}
}

// lockSession is one session of a lock client and the time its TTL counts
// from (the send time of its create or of its last acknowledged renewal).
type lockSession struct {
	w       *catalogWorkload
	env     *Env
	cli     *api.Client // the member the session was created on
	rng     *rand.Rand
	id, key string
	renewed int64
	ended   int64 // when a renewal answered that the session is gone; 0 before
}

func (s *lockSession) until() int64 {
	u := s.renewed + int64(catalogSessionTTL)
	if s.ended > 0 {
		u = min(u, s.ended)
	}
	return u
}

func (s *lockSession) wo(ctx context.Context) (*api.WriteOptions, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, s.w.opts.opTimeout())
	return (&api.WriteOptions{}).WithContext(ctx), cancel
}

// get reads the lock key at the default consistency (linearizable) on a
// random member: what one member acknowledged, every member's reads see.
func (s *lockSession) get(ctx context.Context) (*api.KVPair, error) {
	ctx, cancel := context.WithTimeout(ctx, s.w.opts.opTimeout())
	defer cancel()
	pair, _, err := s.w.apis[s.rng.Intn(len(s.w.apis))].KV().Get(s.key, (&api.QueryOptions{}).WithContext(ctx))
	return pair, err
}

// lockRound creates a session on a random member, tries to acquire a
// random lock key with it and, if it did, holds it, checks it, and lets it
// go by a release or (one time in ten) by destroying the session. It
// reports whether the round got as far as an acquire's answer.
func (w *catalogWorkload) lockRound(ctx context.Context, env *Env, rng *rand.Rand, name string) bool {
	s := &lockSession{w: w, env: env, cli: w.apis[rng.Intn(len(w.apis))], rng: rng,
		key: fmt.Sprintf("check/catalog/lock/%d", rng.Intn(catalogLockKeys)), renewed: env.Now()}
	wo, cancel := s.wo(ctx)
	id, _, err := s.cli.Session().Create(&api.SessionEntry{TTL: catalogSessionTTL.String(), LockDelay: catalogSessionTTL,
		Behavior: api.SessionBehaviorRelease}, wo)
	cancel()
	if err != nil {
		return false // a session made or not, unused: it expires
	}
	s.id = id
	w.locks.add(func(l *catalogLocks) { l.sessions++ })
	defer s.destroy(context.WithoutCancel(ctx))
	wo, cancel = s.wo(ctx)
	ok, _, err := s.cli.KV().Acquire(&api.KVPair{Key: s.key, Session: id}, wo)
	cancel()
	switch {
	case err != nil:
		w.locks.add(func(l *catalogLocks) { l.unknown++ })
		return false
	case !ok:
		return true
	}
	h := catalogHold{Key: s.key, Session: id, Client: name, Acquired: env.Now()}
	s.hold(ctx, rng, h.Acquired+int64(catalogHoldFor/2)+rng.Int63n(int64(catalogHoldFor)))
	h.Until = min(env.Now(), s.until())
	if rng.Intn(10) == 0 {
		s.destroyAndRead(ctx)
	} else {
		wo, cancel = s.wo(ctx)
		s.cli.KV().Release(&api.KVPair{Key: s.key, Session: id}, wo)
		cancel()
	}
	w.locks.add(func(l *catalogLocks) { l.holds = append(l.holds, h) })
	return true
}

// hold keeps the lock until the client's clock passes end (or the run
// ends, or the session is known to be gone): every few hundred
// milliseconds it renews the session and reads the key.
func (s *lockSession) hold(ctx context.Context, rng *rand.Rand, end int64) {
	for ctx.Err() == nil && s.ended == 0 {
		sleepCtx(ctx, time.Duration(100+rng.Intn(300))*time.Millisecond)
		s.renew(ctx)
		s.readWhileHolding(ctx)
		if s.env.Now() >= end {
			return
		}
	}
}

// renew renews the session; an acknowledged renewal extends the belief.
func (s *lockSession) renew(ctx context.Context) {
	sent := s.env.Now()
	wo, cancel := s.wo(ctx)
	defer cancel()
	if e, _, err := s.cli.Session().Renew(s.id, wo); err == nil && e != nil {
		s.renewed = sent
	} else if err == nil {
		s.ended = s.env.Now() // gone: no more belief
	}
}

// readWhileHolding reads the lock key linearizably: while the holder
// still believes, no other session may hold it (its own session may have
// ended early; the lock delay keeps others out).
func (s *lockSession) readWhileHolding(ctx context.Context) {
	pair, err := s.get(ctx)
	ret := s.env.Now()
	if err != nil || pair == nil || pair.Session == "" || pair.Session == s.id || ret >= s.until() {
		return
	}
	s.w.locks.add(func(l *catalogLocks) {
		l.anomalies = append(l.anomalies, fmt.Sprintf("%s: a read that returned at %.3fs found it held by session %s, while the holder of session %s still believed it held it (until %.3fs)",
			s.key, float64(ret)/1e9, pair.Session, s.id, float64(s.until())/1e9))
	})
}

// destroyAndRead destroys the session while it holds the lock, then reads
// the key: a destroyed session's lock is released when destroy returns.
func (s *lockSession) destroyAndRead(ctx context.Context) {
	wo, cancel := s.wo(ctx)
	_, err := s.cli.Session().Destroy(s.id, wo)
	cancel()
	if err != nil {
		return
	}
	pair, err := s.get(ctx)
	if err == nil && pair != nil && pair.Session == s.id {
		s.w.locks.add(func(l *catalogLocks) {
			l.anomalies = append(l.anomalies, fmt.Sprintf("%s: still held by session %s after its destroy returned", s.key, s.id))
		})
	}
}

// destroy ends the session (best effort: one that is left expires).
func (s *lockSession) destroy(ctx context.Context) {
	wo, cancel := s.wo(ctx)
	defer cancel()
	s.cli.Session().Destroy(s.id, wo)
}

// judgeCatalogHolds lists every pair of holds of one key whose beliefs
// overlapped: a later holder acquired the key before an earlier one
// stopped believing it held it.
func judgeCatalogHolds(holds []catalogHold) []string {
	sorted := append([]catalogHold(nil), holds...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Acquired < sorted[j].Acquired })
	var out []string
	for i, a := range sorted {
		for _, b := range sorted[i+1:] {
			if b.Acquired >= a.Until {
				continue
			}
			if b.Key == a.Key && len(out) < maxListed {
				out = append(out, fmt.Sprintf("%s: %s (session %s) acquired it at %.3fs while %s (session %s) believed it held it from %.3fs to %.3fs",
					a.Key, b.Client, b.Session, float64(b.Acquired)/1e9, a.Client, a.Session, float64(a.Acquired)/1e9, float64(a.Until)/1e9))
			}
		}
	}
	return out
}
