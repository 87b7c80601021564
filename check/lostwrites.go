package check

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// lostWritesPrefix holds the lost-writes workload's keys.
const lostWritesPrefix = "check/lw/"

// maxListed caps the anomalies listed one by one.
const maxListed = 20

// lostWritesWorkload puts unique keys from clients pinned to every member
// and, at the end, reads every member's local state: each acknowledged put
// must be there with its value, nothing that was never written may be, and
// every member's HashKV must agree at the same revision.
type lostWritesWorkload struct {
	opts WorkloadOptions

	mu        sync.Mutex
	acked     map[string]string // key -> value, acknowledged
	attempted map[string]string // key -> value, every put issued
	ackedAt   map[string]int64
	failed    int
}

func newLostWritesWorkload(o WorkloadOptions) *lostWritesWorkload {
	return &lostWritesWorkload{opts: o, acked: map[string]string{}, attempted: map[string]string{}, ackedAt: map[string]int64{}}
}

func (w *lostWritesWorkload) Name() string { return "lost-writes" }

func (w *lostWritesWorkload) Run(ctx context.Context, env *Env) error {
	return runClients(ctx, env, 1, 0, func(i, _ int, cli *clientv3.Client, _ *rand.Rand) {
		w.client(ctx, env, cli, i)
	})
}

func (w *lostWritesWorkload) client(ctx context.Context, env *Env, cli *clientv3.Client, member int) {
	for seq := 0; ctx.Err() == nil; seq++ {
		key := fmt.Sprintf("%sm%d/%08d", lostWritesPrefix, member+1, seq)
		val := fmt.Sprintf("v%d", seq)
		w.mu.Lock()
		w.attempted[key] = val
		w.mu.Unlock()
		pctx, cancel := context.WithTimeout(ctx, w.opts.opTimeout())
		_, err := cli.Put(pctx, key, val)
		cancel()
		w.mu.Lock()
		if err == nil {
			w.acked[key] = val
			w.ackedAt[key] = env.Now()
		} else {
			w.failed++
		}
		w.mu.Unlock()
		if err != nil {
			sleepCtx(ctx, failureBackoff)
		}
	}
}

func (w *lostWritesWorkload) Check(ctx context.Context, env *Env) Result {
	w.mu.Lock()
	defer w.mu.Unlock()
	res := Result{Workload: w.Name(), Verdict: VerdictOK}
	rev, err := finalRevision(ctx, env)
	if err != nil {
		return unknownResult(res, err)
	}
	var anomalies []string
	deadline := time.Now().Add(w.opts.catchUpTimeout())
	for i := 0; i < env.Cluster.Size(); i++ {
		kvs, err := localState(ctx, env, i, rev, deadline)
		var behind *behindError
		switch {
		case errors.As(err, &behind):
			anomalies = append(anomalies, err.Error())
			continue
		case err != nil:
			return unknownResult(res, err)
		}
		anomalies = append(anomalies, w.compare(env.Cluster.Name(i), kvs)...)
	}
	if len(anomalies) == 0 {
		hashes, err := hashesAt(ctx, env, rev)
		if err != nil {
			return unknownResult(res, err)
		}
		anomalies = append(anomalies, hashes...)
	}
	res.Summary = fmt.Sprintf("%d puts acknowledged, %d failed; final revision %d", len(w.acked), w.failed, rev)
	if len(anomalies) > 0 {
		res.Verdict = VerdictFail
		if len(anomalies) > maxListed {
			anomalies = append(anomalies[:maxListed], fmt.Sprintf("... and %d more", len(anomalies)-maxListed))
		}
		res.Anomalies = anomalies
	}
	return res
}

// behindError: a member that answers, in a converged cluster, but does not
// reach the cluster's revision. Every member applies the same log, so this
// is an anomaly (a diverged or stuck state machine), not an inconclusive
// check.
type behindError struct {
	member    string
	rev, want int64
}

func (e *behindError) Error() string {
	return fmt.Sprintf("%s stays at revision %d while the cluster is at %d (diverged or stuck)", e.member, e.rev, e.want)
}

// compare checks one member's keys against what was written.
func (w *lostWritesWorkload) compare(name string, kvs map[string]string) []string {
	var out []string
	keys := make([]string, 0, len(w.acked))
	for k := range w.acked {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		got, ok := kvs[k]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s lost %s (acknowledged at %.3fs)", name, k, float64(w.ackedAt[k])/1e9))
		case got != w.acked[k]:
			out = append(out, fmt.Sprintf("%s has %s=%q, acknowledged %q", name, k, got, w.acked[k]))
		}
	}
	for k, v := range kvs {
		if _, acked := w.acked[k]; acked {
			continue // compared above
		}
		if want, ok := w.attempted[k]; !ok || want != v {
			out = append(out, fmt.Sprintf("%s has %s=%q, which was never written", name, k, v))
		}
	}
	return out
}

func unknownResult(res Result, err error) Result {
	res.Verdict = VerdictUnknown
	res.Anomalies = append(res.Anomalies, "could not read the final state: "+err.Error())
	return res
}

// finalRevision is the cluster's revision after the run, read linearizably.
func finalRevision(ctx context.Context, env *Env) (int64, error) {
	var last error
	for i := 0; i < env.Cluster.Size(); i++ {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := env.Admin(i).Get(rctx, "check/final")
		cancel()
		if err == nil {
			return resp.Header.Revision, nil
		}
		last = err
	}
	return 0, fmt.Errorf("final revision: %w", last)
}

// defaultCatchUpTimeout: see WorkloadOptions.CatchUpTimeout.
const defaultCatchUpTimeout = 30 * time.Second

// localState waits (until deadline) for member i to apply revision rev and
// returns its local (serializable) view of the lost-writes keys.
func localState(ctx context.Context, env *Env, i int, rev int64, deadline time.Time) (map[string]string, error) {
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := env.Admin(i).Get(rctx, lostWritesPrefix, clientv3.WithPrefix(), clientv3.WithSerializable())
		cancel()
		if err == nil && resp.Header.Revision >= rev {
			out := make(map[string]string, len(resp.Kvs))
			for _, kv := range resp.Kvs {
				out[string(kv.Key)] = string(kv.Value)
			}
			return out, nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				return nil, &behindError{member: env.Cluster.Name(i), rev: resp.Header.Revision, want: rev}
			}
			return nil, fmt.Errorf("%s did not catch up: %w", env.Cluster.Name(i), err)
		}
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return nil, ctx.Err()
		}
	}
}

// hashesAt compares every member's HashKV at rev.
func hashesAt(ctx context.Context, env *Env, rev int64) ([]string, error) {
	type hk struct {
		hash       uint32
		compactRev int64
	}
	var got []hk
	var parts []string
	for i := 0; i < env.Cluster.Size(); i++ {
		hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := env.Admin(i).HashKV(hctx, env.Cluster.Endpoint(i), rev)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("HashKV(%d) on %s: %w", rev, env.Cluster.Name(i), err)
		}
		got = append(got, hk{resp.Hash, resp.CompactRevision})
		parts = append(parts, fmt.Sprintf("%s=%08x (compacted at %d)", env.Cluster.Name(i), resp.Hash, resp.CompactRevision))
	}
	for _, h := range got[1:] {
		if h != got[0] {
			return []string{fmt.Sprintf("members disagree on HashKV at revision %d: %s", rev, strings.Join(parts, ", "))}, nil
		}
	}
	return nil, nil
}
