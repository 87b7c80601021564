package check

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"time"

	"github.com/anishathalye/porcupine"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const (
	// registerKeys is the number of keys in use at any time.
	registerKeys = 5
	// opsPerKey retires a key after this many operations, so each key's
	// history (checked on its own) stays small enough for porcupine.
	opsPerKey = 200
	// defaultOpTimeout bounds every client call unless
	// WorkloadOptions.OpTimeout says otherwise; a write that times out has
	// an unknown outcome.
	defaultOpTimeout = 2 * time.Second
	// defaultCheckTimeout bounds porcupine; when it runs out the verdict
	// is unknown, never ok.
	defaultCheckTimeout = 2 * time.Minute
)

// registerWorkload runs get, put and compare-and-set on a rotating set of
// keys from clients pinned to every member, and checks the history for
// linearizability against registerModel.
type registerWorkload struct {
	opts WorkloadOptions
	opLog
	keys *rotatingNames
}

func newRegisterWorkload(o WorkloadOptions) *registerWorkload {
	return &registerWorkload{opts: o, keys: newRotatingNames("check/register/%04d", registerKeys, opsPerKey)}
}

func (w *registerWorkload) Name() string { return "register" }

func (w *registerWorkload) Run(ctx context.Context, env *Env) error {
	return runClients(ctx, env, w.opts.ClientsPerMember, 1000, func(_, _ int, cli *clientv3.Client, rng *rand.Rand) {
		w.client(ctx, env, cli, rng)
	})
}

// failureBackoff is the least pause of a client after a failed call.
const failureBackoff = 100 * time.Millisecond

// definitelyFailed reports whether a write's error means it was not
// executed. synod answers "no leader" only before a request is handed to
// raft (or when raft refuses it), and "too many requests" only when it is
// not queued; losing the leader while a request is in flight, timeouts and
// transport errors are unknown outcomes. A server that broke this promise
// would show up as an anomaly, which it would be.
func definitelyFailed(err error) bool {
	return errors.Is(err, rpctypes.ErrNoLeader) || errors.Is(err, rpctypes.ErrTooManyRequests)
}

// observed is what one client last saw of a key.
type observed struct {
	value string
	rev   int64
}

// client issues operations until ctx ends.
func (w *registerWorkload) client(ctx context.Context, env *Env, cli *clientv3.Client, rng *rand.Rand) {
	proc := w.newProc()
	seen := map[string]observed{}
	for seq := 0; ctx.Err() == nil; seq++ {
		key := w.keys.pick(rng)
		in := regInput{Key: key, Value: fmt.Sprintf("p%d-%d", proc, seq)}
		last := seen[key]
		switch r := rng.Intn(10); {
		case r < 4:
			in.Op = opGet
		case r < 6 || last.value == "":
			in.Op = opPut
		case r < 8:
			in.Op, in.Expect = opCASValue, last.value
		default:
			in.Op, in.ExpectRev = opCASRev, last.rev
		}
		call := env.Now()
		out, err := doRegister(ctx, cli, in, w.opts.opTimeout())
		ret := env.Now()
		if err != nil {
			// Back off a little so that a member that cannot serve does
			// not flood the history with failures.
			sleepCtx(ctx, failureBackoff+time.Duration(rng.Int63n(int64(failureBackoff))))
			if in.Op == opGet || definitelyFailed(err) {
				continue // it had no effect: leave it out
			}
			out = regOutput{Unknown: true}
			ret = -1 // fixed up to "after everything" by Check
		}
		w.record(porcupine.Operation{ClientId: proc, Input: in, Call: call, Output: out, Return: ret})
		switch {
		case out.Unknown:
			delete(seen, key)
			proc = w.newProc()
		case in.Op == opPut || out.Ok:
			seen[key] = observed{in.Value, out.Rev}
		default:
			seen[key] = observed{out.Value, out.Rev}
		}
	}
}

// doRegister performs one operation.
func doRegister(ctx context.Context, cli *clientv3.Client, in regInput, timeout time.Duration) (regOutput, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch in.Op {
	case opGet:
		resp, err := cli.Get(ctx, in.Key)
		if err != nil {
			return regOutput{}, err
		}
		return readOutput(resp.Kvs), nil
	case opPut:
		resp, err := cli.Put(ctx, in.Key, in.Value)
		if err != nil {
			return regOutput{}, err
		}
		return regOutput{Rev: resp.Header.Revision}, nil
	}
	cmp := clientv3.Compare(clientv3.Value(in.Key), "=", in.Expect)
	if in.Op == opCASRev {
		cmp = clientv3.Compare(clientv3.ModRevision(in.Key), "=", in.ExpectRev)
	}
	resp, err := cli.Txn(ctx).If(cmp).Then(clientv3.OpPut(in.Key, in.Value)).Else(clientv3.OpGet(in.Key)).Commit()
	if err != nil {
		return regOutput{}, err
	}
	if resp.Succeeded {
		return regOutput{Ok: true, Rev: resp.Header.Revision}, nil
	}
	if len(resp.Responses) != 1 || resp.Responses[0].GetResponseRange() == nil {
		return regOutput{}, fmt.Errorf("check: txn else-branch returned %d responses", len(resp.Responses))
	}
	return readOutput(resp.Responses[0].GetResponseRange().Kvs), nil
}

func readOutput(kvs []*mvccpb.KeyValue) regOutput {
	if len(kvs) == 0 {
		return regOutput{}
	}
	return regOutput{Value: string(kvs[0].Value), Rev: kvs[0].ModRevision}
}

func (w *registerWorkload) Check(_ context.Context, env *Env) Result {
	h := w.ops()
	fixUnknownReturns(h)
	unknown := 0
	for _, op := range h {
		if op.Output.(regOutput).Unknown {
			unknown++
		}
	}
	res := Result{Workload: w.Name(), Verdict: VerdictOK,
		Summary: fmt.Sprintf("%d operations on %d keys, %d with unknown outcome", len(h), w.keys.count(), unknown)}
	return porcupineVerdict(res, registerModel, h, w.opts.CheckTimeout, env, func(op porcupine.Operation) string {
		return "key " + op.Input.(regInput).Key
	})
}

// faultAnnotations shows the fault timeline above porcupine's history.
func faultAnnotations(events []FaultEvent) []porcupine.Annotation {
	var out []porcupine.Annotation
	for _, ev := range events {
		desc := ev.Desc
		if ev.Err != "" {
			desc = ev.Err
		}
		out = append(out, porcupine.Annotation{Tag: "nemesis: " + ev.Nemesis, Start: ev.Start, End: ev.End,
			Description: desc, BackgroundColor: "#f8d7da"})
	}
	return out
}
