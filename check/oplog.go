package check

import (
	"context"
	"fmt"
	"math/rand"
	"sync"

	"github.com/anishathalye/porcupine"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// opLog is the porcupine history of one workload. Safe for concurrent use.
type opLog struct {
	mu      sync.Mutex
	history []porcupine.Operation
	procs   int // porcupine client IDs handed out
}

// newProc returns a fresh porcupine client ID. A client that saw an unknown
// outcome continues as a new process, since its old operation never ends.
func (l *opLog) newProc() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.procs++
	return l.procs - 1
}

// record appends one completed (or unknown-outcome) operation.
func (l *opLog) record(op porcupine.Operation) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.history = append(l.history, op)
}

// ops returns a copy of the history.
func (l *opLog) ops() []porcupine.Operation {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]porcupine.Operation(nil), l.history...)
}

// rotatingNames hands out names (keys or key groups) from a fixed-size pool,
// retiring each for a fresh one after limit uses, so that every name's
// history stays small enough for porcupine. Safe for concurrent use.
type rotatingNames struct {
	mu     sync.Mutex
	format string // fmt format with one %04d verb
	limit  int
	names  []string
	used   []int
	made   int // names created so far
}

func newRotatingNames(format string, pool, limit int) *rotatingNames {
	r := &rotatingNames{format: format, limit: limit}
	for i := 0; i < pool; i++ {
		r.names = append(r.names, r.freshLocked())
		r.used = append(r.used, 0)
	}
	return r
}

func (r *rotatingNames) freshLocked() string {
	r.made++
	return fmt.Sprintf(r.format, r.made)
}

// pick returns a name in use, retiring it once it reached its limit.
func (r *rotatingNames) pick(rng *rand.Rand) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := rng.Intn(len(r.names))
	r.used[i]++
	n := r.names[i]
	if r.used[i] >= r.limit {
		r.names[i], r.used[i] = r.freshLocked(), 0
	}
	return n
}

// count is how many names were created.
func (r *rotatingNames) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.made
}

// runClients runs perMember clients pinned to each member until ctx ends,
// each with its own client and a generator seeded from the run's seed,
// seedBase, the member and the client index; it returns once all have
// finished. fn must return when ctx ends.
func runClients(ctx context.Context, env *Env, perMember int, seedBase int64,
	fn func(member, client int, cli *clientv3.Client, rng *rand.Rand)) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := 0; i < env.Cluster.Size(); i++ {
		for c := 0; c < perMember; c++ {
			cli, err := env.Cluster.Client(i)
			if err != nil {
				return err
			}
			rng := rand.New(rand.NewSource(env.Seed + seedBase + int64(i*100+c)))
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer cli.Close()
				fn(i, c, cli, rng)
			}()
		}
	}
	return nil
}
