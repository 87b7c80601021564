package check

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const (
	// leasePrefix holds the lease workload's keys.
	leasePrefix = "check/lease/"
	// leaseTTL is the TTL the lease workload asks for, in seconds.
	leaseTTL = 3
	// leaseLife is how long a client keeps one lease alive before it lets
	// it expire and starts another.
	leaseLife = 8 * time.Second
	// leaseTolerance is the slack allowed between the client's clock and
	// the leader's (the same machine's) and for timer granularity.
	leaseTolerance = 500 * time.Millisecond
	// leaseProbe is the pause between two keep-alives of a lease.
	leaseProbe = 400 * time.Millisecond
)

// leaseWorkload checks that a lease kept alive is never expired early:
// clients pinned to every member grant a lease, attach a key to it and keep
// it alive with KeepAliveOnce, reading the key after each keep-alive. A key
// (or the lease) that is gone at a moment before the TTL counted from the
// *sending* of the last acknowledged keep-alive, less a tolerance, is an
// anomaly: the leader renewed the lease no earlier than it was sent.
type leaseWorkload struct {
	opts WorkloadOptions

	mu        sync.Mutex
	leases    int
	renewals  int
	reads     int
	expired   int // leases found gone after their deadline: expected
	anomalies []string
}

func newLeaseWorkload(o WorkloadOptions) *leaseWorkload { return &leaseWorkload{opts: o} }

func (w *leaseWorkload) Name() string { return "lease" }

func (w *leaseWorkload) Run(ctx context.Context, env *Env) error {
	return runClients(ctx, env, 1, 0, func(i, _ int, cli *clientv3.Client, _ *rand.Rand) {
		for seq := 0; ctx.Err() == nil; seq++ {
			key := fmt.Sprintf("%s%s/%06d", leasePrefix, env.Cluster.Name(i), seq)
			if !w.oneLease(ctx, env, cli, key) {
				sleepCtx(ctx, failureBackoff)
			}
		}
	})
}

// leaseState is what a client knows of its lease.
type leaseState struct {
	id       clientv3.LeaseID
	key      string
	deadline time.Time // the lease must live at least until then
}

// oneLease grants a lease, attaches key and keeps it alive for leaseLife,
// probing the key after every renewal. It reports whether the lease was
// granted and the key written.
func (w *leaseWorkload) oneLease(ctx context.Context, env *Env, cli *clientv3.Client, key string) bool {
	sent := time.Now()
	gctx, cancel := context.WithTimeout(ctx, w.opts.opTimeout())
	g, err := cli.Grant(gctx, leaseTTL)
	cancel()
	if err != nil {
		return false
	}
	st := leaseState{id: g.ID, key: key, deadline: sent.Add(time.Duration(g.TTL) * time.Second)}
	pctx, cancel := context.WithTimeout(ctx, w.opts.opTimeout())
	_, err = cli.Put(pctx, key, "alive", clientv3.WithLease(g.ID))
	cancel()
	if err != nil {
		return false
	}
	w.mu.Lock()
	w.leases++
	w.mu.Unlock()
	end := time.Now().Add(leaseLife)
	for ctx.Err() == nil && time.Now().Before(end) {
		if !w.renewAndProbe(ctx, env, cli, &st) {
			return true
		}
		sleepCtx(ctx, leaseProbe)
	}
	return true
}

// renewAndProbe sends one keep-alive and reads the key. It returns false
// once the lease is gone (after its deadline, as expected, or before it,
// recorded as an anomaly).
func (w *leaseWorkload) renewAndProbe(ctx context.Context, env *Env, cli *clientv3.Client, st *leaseState) bool {
	sent := time.Now()
	kctx, cancel := context.WithTimeout(ctx, w.opts.opTimeout())
	ka, err := cli.KeepAliveOnce(kctx, st.id)
	cancel()
	switch {
	case errors.Is(err, rpctypes.ErrLeaseNotFound):
		return w.gone(env, st, "keep-alive answered lease not found")
	case err == nil:
		st.deadline = latest(st.deadline, sent.Add(time.Duration(ka.TTL)*time.Second))
		w.mu.Lock()
		w.renewals++
		w.mu.Unlock()
	}
	rctx, cancel := context.WithTimeout(ctx, w.opts.opTimeout())
	resp, err := cli.Get(rctx, st.key)
	cancel()
	if err != nil {
		return true
	}
	w.mu.Lock()
	w.reads++
	w.mu.Unlock()
	if len(resp.Kvs) == 0 {
		return w.gone(env, st, fmt.Sprintf("a linearizable read at revision %d found no key", resp.Header.Revision))
	}
	return true
}

// gone judges a lease found gone now (the response just arrived, so the
// server decided no later than now).
func (w *leaseWorkload) gone(env *Env, st *leaseState, how string) bool {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if early := st.deadline.Sub(now); early > leaseTolerance {
		w.anomalies = append(w.anomalies, fmt.Sprintf("lease %x of %s expired %v early: %s at %.3fs, but a keep-alive acknowledged it until %.3fs",
			int64(st.id), st.key, early.Round(time.Millisecond), how, float64(now.Sub(env.Start))/1e9, float64(st.deadline.Sub(env.Start))/1e9))
	} else {
		w.expired++
	}
	return false
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func (w *leaseWorkload) Check(_ context.Context, _ *Env) Result {
	w.mu.Lock()
	defer w.mu.Unlock()
	res := Result{Workload: w.Name(), Verdict: VerdictOK,
		Summary: fmt.Sprintf("%d leases, %d keep-alives acknowledged, %d reads; %d leases expired after their deadline (expected when keep-alives fail)",
			w.leases, w.renewals, w.reads, w.expired)}
	if w.leases == 0 {
		w.anomalies = append(w.anomalies, "no lease was ever granted and attached")
	}
	if len(w.anomalies) > 0 {
		res.Verdict = VerdictFail
		res.Anomalies = append([]string(nil), w.anomalies...)
		if len(res.Anomalies) > maxListed {
			res.Anomalies = append(res.Anomalies[:maxListed:maxListed], fmt.Sprintf("... and %d more", len(w.anomalies)-maxListed))
		}
	}
	return res
}
