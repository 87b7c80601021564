package checkrunner

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/synod-db/synod/catalog"
	"github.com/synod-db/synod/healthcheck"
)

// refresh reads the members (the agent nodes), loads the checks of those
// not read yet, and resyncs.
func (r *Runner) refresh(ctx context.Context) error {
	mctx, cancel := context.WithTimeout(ctx, r.cfg.WriteTimeout)
	defer cancel()
	ml, err := r.cfg.Client.MemberList(mctx)
	if err != nil {
		return fmt.Errorf("checkrunner: members: %w", err)
	}
	agents := []string{r.cfg.Node} // its own node even before its name is published
	for _, m := range ml.Members {
		if m.Name != "" && m.Name != r.cfg.Node {
			agents = append(agents, m.Name)
		}
	}
	r.view.agents = agents
	for _, n := range agents {
		if _, ok := r.view.loaded[n]; ok {
			continue
		}
		resp, err := r.cfg.Client.Get(mctx, catalog.NodeChecksPrefix(n), clientv3.WithPrefix())
		if err != nil {
			return fmt.Errorf("checkrunner: checks of %s: %w", n, err)
		}
		r.view.load(n, resp.Header.Revision, resp.Kvs)
	}
	r.resync()
	return nil
}

// resync recomputes the nodes this member runs and gives the schedule
// their checks at once; it queues the serfHealth writes they need, a taken
// over node's only once the takeover has held for the runner lease's TTL
// (healthcheck.Takeovers).
func (r *Runner) resync() {
	owned := healthcheck.Owned(r.cfg.Node, r.view.agents, r.view.liveNames())
	for _, n := range owned {
		if !slices.Contains(r.owned, n) && n != r.cfg.Node && len(r.view.checks[n]) > 0 {
			r.log.Info("running the health checks of a node whose member is gone", "node", n)
		}
	}
	for _, n := range r.owned {
		if !slices.Contains(owned, n) && len(r.view.checks[n]) > 0 {
			r.log.Info("handing the health checks of a node back to its member", "node", n)
		}
	}
	r.owned = owned
	if dropped := r.sched.Sync(r.view.specs(owned), time.Now()); dropped > 0 {
		r.log.Warn("health checks over the runner's bound are not run", "dropped", dropped)
	}
	settled, next := r.takeovers.Observe(r.cfg.Node, owned, time.Now())
	r.serfDue = next
	for _, u := range healthcheck.SerfUpdates(r.cfg.Node, settled, r.view.serf()) {
		r.w.put(u)
	}
}

// step does what is due now: re-arms touched TTL checks, writes TTL
// expiries, asks for reaps and starts the due probes (as many as the bound
// on probes in flight allows).
func (r *Runner) step(ctx context.Context, wg *sync.WaitGroup) {
	now := time.Now()
	if !r.serfDue.IsZero() && !now.Before(r.serfDue) {
		r.resync()
	}
	r.mu.Lock()
	touched := r.touched
	r.touched = nil
	r.mu.Unlock()
	for _, id := range touched {
		r.sched.Touch(healthcheck.Key{Node: r.cfg.Node, CheckID: id}, now)
	}
	for _, u := range r.sched.Expired(now) {
		r.w.put(u)
	}
	for _, ref := range r.sched.Reap(now) {
		r.w.reap(ref)
	}
	for _, sp := range r.sched.Due(now, r.cfg.Probes-r.inFlight) {
		r.inFlight++
		timeout := r.sched.Timeout(sp)
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, timeout)
			res := r.cfg.Prober.Probe(pctx, sp)
			cancel()
			r.results <- probeResult{key: sp.Key, res: res} // never blocks: it holds a slot per probe in flight
		}()
	}
}
