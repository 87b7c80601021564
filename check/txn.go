package check

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"time"

	"github.com/anishathalye/porcupine"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const (
	// txnGroups is the number of key groups in use at any time.
	txnGroups = 3
	// opsPerGroup retires a group after this many transactions.
	opsPerGroup = 150
)

// txnWorkload runs multi-key transactions (snapshot reads of a group,
// atomic multi-key writes, multi-key compare-and-set on mod_revisions) on
// rotating groups of keys, and checks each group's history for
// linearizability against txnModel: strict serializability of the
// transactions on each group.
type txnWorkload struct {
	opts WorkloadOptions
	opLog
	groups *rotatingNames
}

func newTxnWorkload(o WorkloadOptions) *txnWorkload {
	return &txnWorkload{opts: o, groups: newRotatingNames("check/txn/%04d/", txnGroups, opsPerGroup)}
}

func (w *txnWorkload) Name() string { return "txn" }

func (w *txnWorkload) Run(ctx context.Context, env *Env) error {
	return runClients(ctx, env, w.opts.ClientsPerMember, 5000, func(_, _ int, cli *clientv3.Client, rng *rand.Rand) {
		w.client(ctx, env, cli, rng)
	})
}

func (w *txnWorkload) client(ctx context.Context, env *Env, cli *clientv3.Client, rng *rand.Rand) {
	proc := w.newProc()
	seen := map[string][groupSize]int64{} // last mod_revisions seen per group
	for seq := 0; ctx.Err() == nil; seq++ {
		in := txnInput{Group: w.groups.pick(rng)}
		last, haveLast := seen[in.Group]
		switch r := rng.Intn(10); {
		case r < 4:
			in.Kind = txnRead
		case r < 7 || !haveLast:
			in.Kind = txnWrite
		default:
			in.Kind = txnCAS
			for i := range in.Compare {
				in.Compare[i] = rng.Intn(2) == 0
				in.Expect[i] = last[i]
			}
		}
		if in.Kind != txnRead {
			for i := range in.Write {
				if rng.Intn(2) == 0 {
					in.Write[i] = fmt.Sprintf("p%d-%d", proc, seq)
				}
			}
			in.Write[rng.Intn(groupSize)] = fmt.Sprintf("p%d-%d", proc, seq)
		}
		call := env.Now()
		out, err := doTxn(ctx, cli, in, w.opts.opTimeout())
		ret := env.Now()
		if err != nil {
			sleepCtx(ctx, failureBackoff+time.Duration(rng.Int63n(int64(failureBackoff))))
			if in.Kind == txnRead || definitelyFailed(err) {
				continue
			}
			out, ret = txnOutput{Unknown: true}, -1
		}
		w.record(porcupine.Operation{ClientId: proc, Input: in, Call: call, Output: out, Return: ret})
		switch {
		case out.Unknown:
			delete(seen, in.Group)
			proc = w.newProc()
		case in.Kind == txnRead || !out.Ok && in.Kind == txnCAS:
			var revs [groupSize]int64
			for i, r := range out.Read {
				revs[i] = r.Rev
			}
			seen[in.Group] = revs
		}
	}
}

// doTxn performs one transaction.
func doTxn(ctx context.Context, cli *clientv3.Client, in txnInput, timeout time.Duration) (txnOutput, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	key := func(i int) string { return fmt.Sprintf("%sk%d", in.Group, i) }
	var gets, puts []clientv3.Op
	var cmps []clientv3.Cmp
	for i := 0; i < groupSize; i++ {
		gets = append(gets, clientv3.OpGet(key(i)))
		if in.Write[i] != "" {
			puts = append(puts, clientv3.OpPut(key(i), in.Write[i]))
		}
		if in.Compare[i] {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key(i)), "=", in.Expect[i]))
		}
	}
	var txn clientv3.Txn
	switch in.Kind {
	case txnRead:
		txn = cli.Txn(ctx).Then(gets...)
	case txnWrite:
		txn = cli.Txn(ctx).Then(puts...)
	default:
		txn = cli.Txn(ctx).If(cmps...).Then(puts...).Else(gets...)
	}
	resp, err := txn.Commit()
	if err != nil {
		return txnOutput{}, err
	}
	if in.Kind == txnWrite || (in.Kind == txnCAS && resp.Succeeded) {
		return txnOutput{Ok: true, Rev: resp.Header.Revision}, nil
	}
	out := txnOutput{}
	if len(resp.Responses) != groupSize {
		return out, fmt.Errorf("check: txn returned %d responses, want %d", len(resp.Responses), groupSize)
	}
	for i, r := range resp.Responses {
		rr := r.GetResponseRange()
		if rr == nil {
			return out, fmt.Errorf("check: txn response %d is not a range", i)
		}
		out.Read[i] = readOutput(rr.Kvs)
	}
	return out, nil
}

func (w *txnWorkload) Check(_ context.Context, env *Env) Result {
	h := w.ops()
	fixUnknownReturns(h)
	unknown := 0
	for _, op := range h {
		if op.Output.(txnOutput).Unknown {
			unknown++
		}
	}
	res := Result{Workload: w.Name(), Verdict: VerdictOK,
		Summary: fmt.Sprintf("%d transactions on %d groups of %d keys, %d with unknown outcome", len(h), w.groups.count(), groupSize, unknown)}
	return porcupineVerdict(res, txnModel, h, w.opts.CheckTimeout, env, func(op porcupine.Operation) string {
		return "group " + op.Input.(txnInput).Group
	})
}

// fixUnknownReturns places every unknown outcome's return (-1) after every
// other event of h.
func fixUnknownReturns(h []porcupine.Operation) {
	var end int64
	for _, op := range h {
		end = max(end, op.Call, op.Return)
	}
	for i := range h {
		if h[i].Return < 0 {
			h[i].Return = end + 1
		}
	}
}

// porcupineVerdict checks h against model within timeout and fills res:
// the verdict, the failing partitions (named by name) and the
// visualization with the fault timeline.
func porcupineVerdict(res Result, model porcupine.Model, h []porcupine.Operation, timeout time.Duration, env *Env, name func(porcupine.Operation) string) Result {
	if timeout <= 0 {
		timeout = defaultCheckTimeout
	}
	if len(h) == 0 {
		res.Verdict = VerdictUnknown
		res.Anomalies = append(res.Anomalies, "no operation was recorded")
		return res
	}
	result, info := porcupine.CheckOperationsVerbose(model, h, timeout)
	switch result {
	case porcupine.Illegal:
		res.Verdict = VerdictFail
		res.Anomalies = append(res.Anomalies, "the history is not linearizable: see the visualization for the longest linearizable prefix of each failing partition")
		res.Anomalies = append(res.Anomalies, illegalPartitions(model, h, timeout, name)...)
	case porcupine.Unknown:
		res.Verdict = VerdictUnknown
		res.Anomalies = append(res.Anomalies, fmt.Sprintf("porcupine did not finish within %v", timeout))
	}
	info.AddAnnotations(faultAnnotations(env.Timeline.Events()))
	var buf bytes.Buffer
	if err := porcupine.Visualize(model, info, &buf); err == nil {
		res.Visualization = buf.Bytes()
	}
	return res
}

// illegalPartitions names the partitions whose own history is not
// linearizable.
// The whole search is bounded by timeout.
func illegalPartitions(model porcupine.Model, h []porcupine.Operation, timeout time.Duration, name func(porcupine.Operation) string) []string {
	var out []string
	deadline := time.Now().Add(timeout)
	for _, part := range model.Partition(h) {
		left := time.Until(deadline)
		if left <= 0 {
			out = append(out, "... (stopped looking: the check's time bound was reached)")
			break
		}
		if porcupine.CheckOperationsTimeout(model, part, left) != porcupine.Illegal {
			continue
		}
		if len(out) == maxListed {
			out = append(out, "... and more")
			break
		}
		first, last := part[0].Call, part[0].Call
		for _, op := range part {
			first, last = min(first, op.Call), max(last, op.Call)
		}
		out = append(out, fmt.Sprintf("%s (%d operations between %.2fs and %.2fs) is not linearizable",
			name(part[0]), len(part), float64(first)/1e9, float64(last)/1e9))
	}
	return out
}
