package checkrunner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/synod-db/synod/catalog"
	"github.com/synod-db/synod/healthcheck"
)

// Config is what a Runner is built from.
type Config struct {
	Node    string           // the member's node name (its --name)
	Client  *clientv3.Client // the member's client of itself
	Store   Store            // the catalog's write path
	Prober  Prober           // nil probes the network (NetProber)
	Options healthcheck.Options
	// Probes bounds the probes in flight at once; default 32.
	Probes int
	// LeaseTTL is the TTL, in seconds, of the lease the runner key is on:
	// how long after a member dies its checks stay unrun; default 5.
	LeaseTTL int
	// WriteTimeout bounds one write; default 10 s.
	WriteTimeout time.Duration
	Logger       *slog.Logger
}

// Runner runs the checks of the nodes its member owns (healthcheck.Owned)
// until its context ends.
type Runner struct {
	cfg   Config
	log   *slog.Logger
	sched *healthcheck.Schedule
	view  *view
	w     *writer
	wake  chan struct{}

	mu      sync.Mutex
	touched []string // TTL check IDs told their status since the loop last looked

	results   chan probeResult
	inFlight  int
	owned     []string
	takeovers *healthcheck.Takeovers
	serfDue   time.Time // when a pending takeover settles; zero if none
}

type probeResult struct {
	key healthcheck.Key
	res healthcheck.Result
}

// New returns a runner; call Run to start it.
func New(cfg Config) *Runner {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Probes <= 0 {
		cfg.Probes = 32
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 5
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	opts := cfg.Options
	if cfg.Prober == nil {
		if opts.OutputBytes <= 0 {
			opts.OutputBytes = healthcheck.DefaultOptions.OutputBytes
		}
		cfg.Prober = NetProber{OutputBytes: opts.OutputBytes}
	}
	r := &Runner{cfg: cfg, log: cfg.Logger, sched: healthcheck.NewSchedule(opts), view: newView(),
		wake: make(chan struct{}, 1), results: make(chan probeResult, cfg.Probes),
		takeovers: healthcheck.NewTakeovers(time.Duration(cfg.LeaseTTL) * time.Second)}
	r.w = newWriter(cfg.Store, cfg.WriteTimeout, cfg.Logger, r.poke)
	return r
}

func (r *Runner) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Touch tells the runner that a TTL check of its own node was given a
// status by its agent: its TTL starts again. Safe for concurrent use.
func (r *Runner) Touch(checkID string) {
	r.mu.Lock()
	r.touched = append(r.touched, checkID)
	r.mu.Unlock()
	r.poke()
}

// Run runs checks until ctx ends. A failure of its session with the store
// (a lost lease, a cancelled watch) starts a new one after a pause; the
// schedule survives it.
func (r *Runner) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.w.run(ctx)
	}()
	for {
		err := r.session(ctx, &wg)
		if ctx.Err() != nil {
			return
		}
		r.log.Warn("health-check runner restarting its session", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// session holds the runner key on a fresh lease, reads the runners and the
// checks, and runs the loop on their watches until one of them fails.
func (r *Runner) session(ctx context.Context, wg *sync.WaitGroup) error {
	sess, err := concurrency.NewSession(r.cfg.Client, concurrency.WithTTL(r.cfg.LeaseTTL), concurrency.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("checkrunner: lease: %w", err)
	}
	defer r.release(ctx, sess)
	if _, err := r.cfg.Client.Put(ctx, RunnerKey(r.cfg.Node), r.cfg.Node, clientv3.WithLease(sess.Lease())); err != nil {
		return fmt.Errorf("checkrunner: runner key: %w", err)
	}
	resp, err := r.cfg.Client.Get(ctx, RunnerPrefix, clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("checkrunner: runners: %w", err)
	}
	r.view.live = map[string]bool{}
	for _, kv := range resp.Kvs {
		r.view.runnerEvent(mvccpb.PUT, kv)
	}
	r.view.loaded = map[string]int64{} // read every node again: events before rev may be gone
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rev := resp.Header.Revision + 1
	runners := r.cfg.Client.Watch(wctx, RunnerPrefix, clientv3.WithPrefix(), clientv3.WithRev(rev))
	checks := r.cfg.Client.Watch(wctx, catalog.CheckPrefix, clientv3.WithPrefix(), clientv3.WithRev(rev))
	if err := r.refresh(ctx); err != nil {
		return err
	}
	return r.loop(ctx, wg, sess, runners, checks)
}

// release ends a session: when the member stops it gives the lease back,
// so that the others take its checks over at once (if the member's client
// still serves); otherwise the lease is left to expire, as the next
// session's runner key is on a new lease already.
func (r *Runner) release(ctx context.Context, sess *concurrency.Session) {
	defer sess.Orphan()
	if ctx.Err() == nil {
		return
	}
	rctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := r.cfg.Client.Revoke(rctx, sess.Lease()); err != nil {
		r.log.Debug("health-check runner: revoking its lease", "err", err)
	}
}

var errWatchEnded = errors.New("checkrunner: watch ended")

func (r *Runner) loop(ctx context.Context, wg *sync.WaitGroup, sess *concurrency.Session, runners, checks clientv3.WatchChan) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		r.step(ctx, wg)
		resetTimer(timer, earliest(r.sched.NextWake(), r.serfDue))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-sess.Done():
			return errors.New("checkrunner: lease lost")
		case wr, ok := <-runners:
			if !ok || wr.Err() != nil {
				return watchErr(wr)
			}
			for _, ev := range wr.Events {
				r.view.runnerEvent(ev.Type, ev.Kv)
			}
			if err := r.refresh(ctx); err != nil {
				return err
			}
		case wr, ok := <-checks:
			if !ok || wr.Err() != nil {
				return watchErr(wr)
			}
			for _, ev := range wr.Events {
				r.view.checkEvent(ev.Type, ev.Kv)
			}
			r.resync()
		case pr := <-r.results:
			r.inFlight--
			if u, ok := r.sched.Done(pr.key, pr.res, time.Now()); ok {
				r.w.put(u)
			}
		case <-r.wake:
			for _, k := range r.w.takeFailed() {
				r.sched.Failed(k)
			}
			r.resync()
		case <-timer.C:
		}
	}
}

func watchErr(wr clientv3.WatchResponse) error {
	if err := wr.Err(); err != nil {
		return fmt.Errorf("checkrunner: watch: %w", err)
	}
	return errWatchEnded
}

// earliest is the earlier of two wake-up times, zero meaning none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

func resetTimer(t *time.Timer, at time.Time) {
	if !t.Stop() {
		select {
		case <-t.C:
		default:
		}
	}
	d := time.Hour
	if !at.IsZero() {
		d = max(time.Until(at), 0)
	}
	t.Reset(d)
}
