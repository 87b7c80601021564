package check

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// watchPrefix holds the watch workload's keys.
const watchPrefix = "check/watch/"

// watchEvent is one put as a watcher (or the writer) saw it.
type watchEvent struct {
	Rev        int64
	Key, Value string
}

// watcher is one watch stream pinned to a member, resumed after every
// cancellation from the revision after the last event it received.
type watcher struct {
	member int
	mu     sync.Mutex
	events []watchEvent
	gaps   [][2]int64 // revisions [from, to] lost to a compaction, legitimately
	resume int        // times the watch was re-established
	errs   []string   // ordering violations seen while receiving
}

// watchWorkload writes unique keys under a prefix while one watcher per
// member watches the prefix from the start revision, with WithRequireLeader
// and resuming after each cancellation. It checks etcd's watch guarantees:
// each watcher's events are strictly ordered by revision (ordered, no
// duplicates), every acknowledged put appears at its revision in every
// watcher (reliable, no gaps), no event appears that was not written, and
// all watchers agree on every revision (atomic, same order).
type watchWorkload struct {
	opts     WorkloadOptions
	start    int64
	watchers []*watcher
	// The watchers outlive Run (they must catch up after the heal): Check
	// stops them with stop and waits on watching.
	stop     context.CancelFunc
	watching sync.WaitGroup

	mu    sync.Mutex
	acked map[int64]watchEvent // by revision
	tried map[string]string
}

func newWatchWorkload(o WorkloadOptions) *watchWorkload {
	return &watchWorkload{opts: o, acked: map[int64]watchEvent{}, tried: map[string]string{}}
}

func (w *watchWorkload) Name() string { return "watch" }

func (w *watchWorkload) Run(ctx context.Context, env *Env) error {
	rev, err := finalRevision(ctx, env)
	if err != nil {
		return err
	}
	w.start = rev + 1
	wctx, stop := context.WithCancel(context.Background())
	w.stop = stop
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := 0; i < env.Cluster.Size(); i++ {
		wt := &watcher{member: i}
		w.watchers = append(w.watchers, wt)
		wcli, err := env.Cluster.Client(i)
		if err != nil {
			return err
		}
		pcli, err := env.Cluster.Client(i)
		if err != nil {
			wcli.Close()
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pcli.Close()
			w.write(ctx, pcli, i)
		}()
		w.watching.Add(1)
		go func() {
			defer w.watching.Done()
			defer wcli.Close()
			wt.run(wctx, wcli, w.start)
		}()
	}
	return nil
}

// write puts unique keys until ctx ends.
func (w *watchWorkload) write(ctx context.Context, cli *clientv3.Client, member int) {
	for seq := 0; ctx.Err() == nil; seq++ {
		key := fmt.Sprintf("%sm%d/%08d", watchPrefix, member+1, seq)
		val := fmt.Sprintf("v%d", seq)
		w.mu.Lock()
		w.tried[key] = val
		w.mu.Unlock()
		pctx, cancel := context.WithTimeout(ctx, w.opts.opTimeout())
		resp, err := cli.Put(pctx, key, val)
		cancel()
		if err != nil {
			sleepCtx(ctx, failureBackoff)
			continue
		}
		w.mu.Lock()
		w.acked[resp.Header.Revision] = watchEvent{Rev: resp.Header.Revision, Key: key, Value: val}
		w.mu.Unlock()
	}
}

// run watches from rev until ctx ends, resuming after every cancellation.
func (wt *watcher) run(ctx context.Context, cli *clientv3.Client, rev int64) {
	next := rev
	for ctx.Err() == nil {
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		ch := cli.Watch(wctx, watchPrefix, clientv3.WithPrefix(), clientv3.WithRev(next))
		next = wt.receive(ch, next)
		cancel()
		if ctx.Err() != nil {
			return
		}
		wt.mu.Lock()
		wt.resume++
		wt.mu.Unlock()
		sleepCtx(ctx, failureBackoff)
	}
}

// receive consumes one watch stream and returns the revision to resume at.
func (wt *watcher) receive(ch clientv3.WatchChan, next int64) int64 {
	for resp := range ch {
		if resp.CompactRevision > next {
			wt.mu.Lock()
			wt.gaps = append(wt.gaps, [2]int64{next, resp.CompactRevision - 1})
			wt.mu.Unlock()
			return resp.CompactRevision
		}
		if resp.Err() != nil {
			return next
		}
		wt.mu.Lock()
		for _, ev := range resp.Events {
			r := ev.Kv.ModRevision
			if r < next {
				wt.errs = append(wt.errs, fmt.Sprintf("event at revision %d after revision %d (out of order or duplicated)", r, next-1))
				continue
			}
			wt.events = append(wt.events, watchEvent{Rev: r, Key: string(ev.Kv.Key), Value: string(ev.Kv.Value)})
			next = r + 1
		}
		wt.mu.Unlock()
	}
	return next
}

func (wt *watcher) last() int64 {
	wt.mu.Lock()
	defer wt.mu.Unlock()
	if len(wt.events) == 0 {
		return 0
	}
	return wt.events[len(wt.events)-1].Rev
}

// covers reports whether rev is outside wt's compaction gaps.
func (wt *watcher) covers(rev int64) bool {
	for _, g := range wt.gaps {
		if rev >= g[0] && rev <= g[1] {
			return false
		}
	}
	return true
}

func (w *watchWorkload) Check(ctx context.Context, env *Env) Result {
	res := Result{Workload: w.Name(), Verdict: VerdictOK}
	defer w.stopWatchers()
	if w.start == 0 {
		return unknownResult(res, fmt.Errorf("the workload never started"))
	}
	final, err := prefixRevision(ctx, env)
	if err != nil {
		return unknownResult(res, err)
	}
	if err := w.waitCaughtUp(ctx, final); err != nil {
		res.Verdict = VerdictFail
		res.Anomalies = append(res.Anomalies, err.Error())
	}
	w.stopWatchers()
	w.mu.Lock()
	defer w.mu.Unlock()
	anomalies := w.compare(env, final)
	res.Anomalies = append(res.Anomalies, anomalies...)
	if len(res.Anomalies) > 0 {
		res.Verdict = VerdictFail
		if len(res.Anomalies) > maxListed {
			res.Anomalies = append(res.Anomalies[:maxListed], fmt.Sprintf("... and %d more", len(res.Anomalies)-maxListed))
		}
	}
	resumes, gaps := 0, 0
	for _, wt := range w.watchers {
		resumes += wt.resume
		gaps += len(wt.gaps)
	}
	res.Summary = fmt.Sprintf("%d puts acknowledged, %d watchers, %d resumptions, %d compaction gaps, revisions %d..%d",
		len(w.acked), len(w.watchers), resumes, gaps, w.start, final)
	return res
}

// stopWatchers ends the watch streams and waits for their goroutines.
func (w *watchWorkload) stopWatchers() {
	if w.stop != nil {
		w.stop()
	}
	w.watching.Wait()
}

// prefixRevision is the highest mod revision under the watch prefix, read
// linearizably.
func prefixRevision(ctx context.Context, env *Env) (int64, error) {
	var last error
	for i := 0; i < env.Cluster.Size(); i++ {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := env.Admin(i).Get(rctx, watchPrefix, clientv3.WithPrefix(), clientv3.WithKeysOnly(),
			clientv3.WithSort(clientv3.SortByModRevision, clientv3.SortDescend), clientv3.WithLimit(1))
		cancel()
		if err == nil {
			if len(resp.Kvs) == 0 {
				return 0, nil
			}
			return resp.Kvs[0].ModRevision, nil
		}
		last = err
	}
	return 0, fmt.Errorf("reading the watch prefix: %w", last)
}

// waitCaughtUp waits until every watcher has seen revision final.
func (w *watchWorkload) waitCaughtUp(ctx context.Context, final int64) error {
	deadline := time.Now().Add(w.opts.catchUpTimeout())
	for _, wt := range w.watchers {
		for wt.last() < final {
			if time.Now().After(deadline) || !sleepCtx(ctx, 50*time.Millisecond) {
				return fmt.Errorf("m%d's watcher stopped at revision %d, want %d", wt.member+1, wt.last(), final)
			}
		}
	}
	return nil
}

// compare checks every watcher against the acknowledged writes and the
// other watchers. w.mu is held; the watchers have stopped.
func (w *watchWorkload) compare(env *Env, final int64) []string {
	var out []string
	truth := map[int64]watchEvent{}
	for r, ev := range w.acked {
		truth[r] = ev
	}
	for _, wt := range w.watchers {
		name := env.Cluster.Name(wt.member)
		for _, e := range wt.errs {
			out = append(out, name+": "+e)
		}
		for _, ev := range wt.events {
			if want, ok := w.tried[ev.Key]; !ok || want != ev.Value {
				out = append(out, fmt.Sprintf("%s saw %s=%q at revision %d, which was never written", name, ev.Key, ev.Value, ev.Rev))
			}
			if t, ok := truth[ev.Rev]; ok && t != ev {
				out = append(out, fmt.Sprintf("%s saw %s=%q at revision %d, where another saw %s=%q", name, ev.Key, ev.Value, ev.Rev, t.Key, t.Value))
				continue
			}
			truth[ev.Rev] = ev
		}
	}
	revs := make([]int64, 0, len(truth))
	for r := range truth {
		if r >= w.start && r <= final {
			revs = append(revs, r)
		}
	}
	sort.Slice(revs, func(i, j int) bool { return revs[i] < revs[j] })
	for _, wt := range w.watchers {
		seen := map[int64]bool{}
		for _, ev := range wt.events {
			seen[ev.Rev] = true
		}
		for _, r := range revs {
			if wt.covers(r) && !seen[r] {
				out = append(out, fmt.Sprintf("%s's watcher missed revision %d (%s)", env.Cluster.Name(wt.member), r, truth[r].Key))
			}
		}
	}
	return out
}
