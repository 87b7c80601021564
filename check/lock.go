package check

import (
	"context"
	"fmt"
	"math/rand"
	"strconv"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"
)

const (
	// lockName is the lock's name: the holders' keys are
	// lockName/<lease id in hex>, as concurrency.Mutex (and the Lock
	// service, which runs it) lays them out.
	lockName = "check/lock/mutex"
	// lockFencedKey is the resource every holder writes through a fenced
	// Txn (compare on its lock key's create revision).
	lockFencedKey = "check/lock/fenced"
	// lockUnfencedKey is the resource every holder writes without a
	// guard, once on entering and once on leaving its critical section.
	lockUnfencedKey = "check/lock/unfenced"
	// lockTTL is the sessions' lease TTL in seconds: short, so a holder
	// whose member is paused or cut off loses its lease during a fault.
	lockTTL = 2
	// lockWait bounds one attempt to acquire the lock.
	lockWait = 5 * time.Second
)

// fenceOutcome is what became of a holder's fenced write.
type fenceOutcome int

const (
	fenceUnknown fenceOutcome = iota // the Txn failed or timed out: it may or may not have taken effect
	fenceApplied                     // the compare held: the write took effect at Rev
	fenceRefused                     // the compare failed: the holder had lost the lock
)

// lockHold is one acquisition of the lock by one client and what the holder
// did while it believed it held the lock.
type lockHold struct {
	// Client names the client ("m2/c1").
	Client string
	// Server says the lock was taken through the Lock service rather than
	// concurrency.Mutex.
	Server bool
	// Token is the fencing token: the create revision of the holder's
	// lock key.
	Token int64
	// Acquired is when Lock returned (ns since the run started).
	Acquired int64
	// Fence is the outcome of the fenced write.
	Fence fenceOutcome
	// FenceRev is the revision of an applied fenced write.
	FenceRev int64
	// FencePrev is the token the fenced write replaced (its prev_kv), 0
	// when the key was new.
	FencePrev int64
	// Released is when the holder stopped believing it held the lock,
	// just before it asked to unlock (ns since the run started).
	Released int64
	// Enter and Exit are the revisions of the unfenced writes on entering
	// and leaving the critical section; 0 when unknown.
	Enter, Exit int64
}

// lockWorkload has clients on every member contend for one lock
// (concurrency.Mutex on sessions with a short lease). Each holder writes a
// shared resource twice without a guard (entering and leaving) and once
// through a Txn fenced on its lock key's create revision. The check: the
// applied fenced writes are in token order (fenced holders never overlap);
// overlapping unfenced critical sections are counted and reported as what
// happens without fencing, never as an anomaly.
type lockWorkload struct {
	opts WorkloadOptions

	mu       sync.Mutex
	holds    []lockHold
	attempts int
	failed   int // acquisitions that failed (timeout, lost session, no leader)
}

func newLockWorkload(o WorkloadOptions) *lockWorkload { return &lockWorkload{opts: o} }

func (w *lockWorkload) Name() string { return "lock" }

func (w *lockWorkload) Run(ctx context.Context, env *Env) error {
	return runClients(ctx, env, w.opts.ClientsPerMember, 5000, func(i, c int, cli *clientv3.Client, rng *rand.Rand) {
		// Odd clients use the server-side Lock service, even ones
		// concurrency.Mutex: both queue on the same keys.
		server := c%2 == 1
		name := fmt.Sprintf("%s/c%d", env.Cluster.Name(i), c+1)
		if server {
			name += "(Lock)"
		}
		for ctx.Err() == nil {
			if !w.holdOnce(ctx, env, cli, name, server, rng) {
				sleepCtx(ctx, failureBackoff+time.Duration(rng.Int63n(int64(failureBackoff))))
			}
		}
	})
}

// holdOnce opens a session, acquires the lock, runs the critical section and
// releases. It reports whether the lock was acquired.
func (w *lockWorkload) holdOnce(ctx context.Context, env *Env, cli *clientv3.Client, name string, server bool, rng *rand.Rand) bool {
	w.mu.Lock()
	w.attempts++
	w.mu.Unlock()
	// Grant the lease here, within a deadline: NewSession would grant it
	// with the context that also bounds its keep-alives.
	gctx, cancel := context.WithTimeout(ctx, w.opts.opTimeout())
	lease, err := cli.Grant(gctx, lockTTL)
	cancel()
	if err != nil {
		w.countFailure()
		return false
	}
	sess, err := concurrency.NewSession(cli, concurrency.WithLease(lease.ID), concurrency.WithContext(ctx))
	if err != nil {
		w.countFailure()
		return false
	}
	defer closeSession(sess, w.opts.opTimeout())
	lctx, cancel := context.WithTimeout(ctx, lockWait)
	key, token, unlock, err := w.acquire(lctx, cli, sess, server)
	cancel()
	if err != nil {
		w.countFailure()
		return false
	}
	h := lockHold{Client: name, Server: server, Token: token, Acquired: env.Now()}
	h.Enter = w.unfencedPut(ctx, cli, h)
	// The critical section's work: long enough for faults to land in it.
	sleepCtx(ctx, time.Duration(50+rng.Intn(250))*time.Millisecond)
	h.Fence, h.FenceRev, h.FencePrev = w.fencedPut(ctx, cli, key, h.Token)
	h.Exit = w.unfencedPut(ctx, cli, h)
	h.Released = env.Now()
	w.mu.Lock()
	w.holds = append(w.holds, h)
	w.mu.Unlock()
	uctx, cancel := context.WithTimeout(context.Background(), w.opts.opTimeout())
	unlock(uctx)
	cancel()
	return true
}

// acquire takes the lock on sess's lease, through concurrency.Mutex or, if
// server is set, the Lock service. It returns the holder's key, the
// fencing token (the key's create revision) and how to unlock.
func (w *lockWorkload) acquire(ctx context.Context, cli *clientv3.Client, sess *concurrency.Session, server bool) (string, int64, func(context.Context) error, error) {
	if !server {
		m := concurrency.NewMutex(sess, lockName)
		if err := m.Lock(ctx); err != nil {
			return "", 0, nil, err
		}
		owner := m.IsOwner()
		return m.Key(), owner.GetCompare().GetCreateRevision(), m.Unlock, nil
	}
	lc := v3lockpb.NewLockClient(cli.ActiveConnection())
	resp, err := lc.Lock(ctx, &v3lockpb.LockRequest{Name: []byte(lockName), Lease: int64(sess.Lease())})
	if err != nil {
		return "", 0, nil, err
	}
	unlock := func(ctx context.Context) error {
		_, err := lc.Unlock(ctx, &v3lockpb.UnlockRequest{Key: resp.Key})
		return err
	}
	// The token is the key's create revision; a key already gone means
	// the lease expired meanwhile: the lock is lost before it was used.
	got, err := cli.Get(ctx, string(resp.Key))
	if err != nil || len(got.Kvs) == 0 {
		if err == nil {
			err = concurrency.ErrSessionExpired
		}
		return "", 0, nil, err
	}
	return string(resp.Key), got.Kvs[0].CreateRevision, unlock, nil
}

func (w *lockWorkload) countFailure() {
	w.mu.Lock()
	w.failed++
	w.mu.Unlock()
}

// closeSession revokes the session's lease within timeout (a member that
// cannot answer lets it expire instead).
func closeSession(sess *concurrency.Session, timeout time.Duration) {
	sess.Orphan()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	sess.Client().Revoke(ctx, sess.Lease())
}

// unfencedPut writes the resource without a guard; it returns the write's
// revision, 0 when the outcome is unknown.
func (w *lockWorkload) unfencedPut(ctx context.Context, cli *clientv3.Client, h lockHold) int64 {
	pctx, cancel := context.WithTimeout(ctx, w.opts.opTimeout())
	defer cancel()
	resp, err := cli.Put(pctx, lockUnfencedKey, fmt.Sprintf("%d %s", h.Token, h.Client))
	if err != nil {
		return 0
	}
	return resp.Header.Revision
}

// fencedPut writes the resource only if the holder's lock key still has its
// create revision (the fencing token), and reports the token it replaced.
func (w *lockWorkload) fencedPut(ctx context.Context, cli *clientv3.Client, key string, token int64) (fenceOutcome, int64, int64) {
	tctx, cancel := context.WithTimeout(ctx, w.opts.opTimeout())
	defer cancel()
	resp, err := cli.Txn(tctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", token)).
		Then(clientv3.OpPut(lockFencedKey, strconv.FormatInt(token, 10), clientv3.WithPrevKV())).Commit()
	if err != nil {
		return fenceUnknown, 0, 0
	}
	if !resp.Succeeded {
		return fenceRefused, 0, 0
	}
	var prev int64
	if len(resp.Responses) == 1 {
		if p := resp.Responses[0].GetResponsePut().GetPrevKv(); p != nil {
			prev, _ = strconv.ParseInt(string(p.Value), 10, 64)
		}
	}
	return fenceApplied, resp.Header.Revision, prev
}

func (w *lockWorkload) Check(ctx context.Context, env *Env) Result {
	w.mu.Lock()
	holds := append([]lockHold(nil), w.holds...)
	attempts := w.attempts
	w.mu.Unlock()
	res := Result{Workload: w.Name(), Verdict: VerdictOK}
	final, err := finalFencedToken(ctx, env)
	if err != nil {
		return unknownResult(res, err)
	}
	lc := checkLockHistory(holds, final)
	viaServer := 0
	for _, h := range holds {
		if h.Server {
			viaServer++
		}
	}
	res.Summary = fmt.Sprintf("%d acquisitions (%d through the Lock service) in %d attempts; fenced writes: %d applied, %d refused, %d unknown; "+
		"%d stale holders overlapped a successor (expected without fencing)", len(holds), viaServer, attempts, lc.applied, lc.refused, lc.unknown, len(lc.overlaps))
	res.Notes = lc.overlaps
	if len(res.Notes) > maxListed {
		res.Notes = append(res.Notes[:maxListed:maxListed], fmt.Sprintf("... and %d more", len(lc.overlaps)-maxListed))
	}
	if len(holds) == 0 {
		lc.anomalies = append(lc.anomalies, "no client ever acquired the lock")
	}
	if len(lc.anomalies) > 0 {
		res.Verdict = VerdictFail
		res.Anomalies = lc.anomalies
		if len(res.Anomalies) > maxListed {
			res.Anomalies = append(res.Anomalies[:maxListed:maxListed], fmt.Sprintf("... and %d more", len(lc.anomalies)-maxListed))
		}
	}
	return res
}

// finalFencedToken reads the fenced resource linearizably after the heal: the
// token of the last fenced write that took effect (0 if none did).
func finalFencedToken(ctx context.Context, env *Env) (int64, error) {
	var last error
	for i := 0; i < env.Cluster.Size(); i++ {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := env.Admin(i).Get(rctx, lockFencedKey)
		cancel()
		if err == nil {
			if len(resp.Kvs) == 0 {
				return 0, nil
			}
			return strconv.ParseInt(string(resp.Kvs[0].Value), 10, 64)
		}
		last = err
	}
	return 0, fmt.Errorf("reading %s: %w", lockFencedKey, last)
}
