package check

import (
	"context"
	"fmt"
	"math/rand"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/hashicorp/consul/api"
)

const (
	// catalogServices is the number of service names in use at any time;
	// a name is retired after catalogOpsPerService operations.
	catalogServices      = 2
	catalogOpsPerService = 120
	// catalogInstances is the number of instance IDs of each service per
	// member (agent).
	catalogInstances = 2
	// catalogChecks is the number of TTL checks per member (agent).
	catalogChecks = 2
	// catalogOpsPerCheck retires a check after this many operations.
	catalogOpsPerCheck = 150
	// catalogKVKeys and catalogOpsPerKVKey rotate the Consul KV keys.
	catalogKVKeys      = 4
	catalogOpsPerKVKey = 150
	// catalogCheckTTL is far longer than any run, so that a TTL check's
	// status changes only through the workload's own updates.
	catalogCheckTTL = "30m"
)

// catalogWorkload drives Consul's HTTP API with the real
// github.com/hashicorp/consul/api client against random members:
// registrations and deregistrations of service instances on members'
// agents, TTL check flips, KV reads, puts and CAS, and sessions with locks.
// Every registration, check and KV key is a register in one porcupine
// history (kvmodel.Register, partitioned by key); the locks are judged on
// the clients' clock (catalogLocks).
type catalogWorkload struct {
	opts WorkloadOptions
	opLog
	services *rotatingNames
	kvKeys   *rotatingNames
	apis     []*api.Client
	checks   []*checkSlot // catalogChecks per member
	locks    catalogLocks
}

// checkSlot is one of a member agent's TTL checks in use. Like a KV key,
// a check is retired after catalogOpsPerCheck operations (so that each
// check's history stays small for porcupine) and replaced by a fresh one,
// whose operations start once its registration and first status were
// acknowledged.
type checkSlot struct {
	member, index int
	mu            sync.Mutex
	id            string // the check in use; "" while it is being replaced
	gen, used     int
}

// use returns the check to operate on ("" while none is ready) and
// whether this use retires it (the caller then makes the next one).
func (c *checkSlot) use() (id string, retire bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.id == "" {
		return "", false
	}
	id, c.used = c.id, c.used+1
	if c.used >= catalogOpsPerCheck {
		c.id = ""
		return id, true
	}
	return id, false
}

// current is the check in use, "" while it is being replaced.
func (c *checkSlot) current() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.id
}

// next names the slot's next check.
func (c *checkSlot) next(node string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	return fmt.Sprintf("chk-%s-%d-%d", node, c.index, c.gen)
}

// ready puts a registered check in use.
func (c *checkSlot) ready(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.id, c.used = id, 0
}

// made is the number of checks the slot registered.
func (c *checkSlot) made() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

func newCatalogWorkload(o WorkloadOptions) *catalogWorkload {
	return &catalogWorkload{opts: o,
		services: newRotatingNames("svc%04d", catalogServices, catalogOpsPerService),
		kvKeys:   newRotatingNames("check/catalog/kv/%04d", catalogKVKeys, catalogOpsPerKVKey)}
}

func (w *catalogWorkload) Name() string { return "catalog" }

// usesConsul: the cluster must serve Consul's API (see needsConsul).
func (w *catalogWorkload) usesConsul() bool { return true }

// consulUser is a workload that needs the members' Consul listeners.
type consulUser interface{ usesConsul() bool }

// needsConsul reports whether any selected workload talks to Consul's API.
func needsConsul(ws []Workload) bool {
	for _, w := range ws {
		if c, ok := w.(consulUser); ok && c.usesConsul() {
			return true
		}
	}
	return false
}

// consulClient is a Consul API client of member i's listener. Each call
// carries its own deadline (a context), so the HTTP client has none.
func consulClient(env *Env, i int) (*api.Client, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second}
	return api.NewClient(&api.Config{Address: env.Cluster.ConsulAddr(i), Scheme: "http",
		HttpClient: &http.Client{Transport: tr}})
}

func (w *catalogWorkload) Run(ctx context.Context, env *Env) error {
	for i := 0; i < env.Cluster.Size(); i++ {
		c, err := consulClient(env, i)
		if err != nil {
			return fmt.Errorf("check: Consul client of %s: %w", env.Cluster.Name(i), err)
		}
		w.apis = append(w.apis, c)
		for k := 0; k < catalogChecks; k++ {
			w.checks = append(w.checks, &checkSlot{member: i, index: k})
		}
	}
	var wg sync.WaitGroup
	for i := 0; i < env.Cluster.Size(); i++ {
		wg.Add(2)
		go func() { defer wg.Done(); w.setupChecks(ctx, env, i) }()
		go func() {
			defer wg.Done()
			w.lockClient(ctx, env, i, rand.New(rand.NewSource(env.Seed+3000+int64(i))))
		}()
		for c := 0; c < w.opts.ClientsPerMember; c++ {
			rng := rand.New(rand.NewSource(env.Seed + 2000 + int64(i*100+c)))
			wg.Add(1)
			go func() { defer wg.Done(); w.client(ctx, env, rng) }()
		}
	}
	wg.Wait()
	return nil
}

// client issues registration, check and KV operations until ctx ends.
func (w *catalogWorkload) client(ctx context.Context, env *Env, rng *rand.Rand) {
	c := &catalogClient{w: w, env: env, rng: rng, proc: w.newProc(), kvSeen: map[string]int64{}}
	for ctx.Err() == nil {
		var ok bool
		switch r := rng.Intn(10); {
		case r < 4:
			ok = c.registration(ctx)
		case r < 7:
			ok = c.checkOp(ctx)
		default:
			ok = c.kvOp(ctx)
		}
		if !ok {
			sleepCtx(ctx, failureBackoff+time.Duration(rng.Int63n(int64(failureBackoff))))
		}
	}
}

// catalogClient is one client's state: its porcupine process (a fresh one
// after each unknown outcome), its sequence of unique values and the
// ModifyIndex it last saw of each KV key.
type catalogClient struct {
	w      *catalogWorkload
	env    *Env
	rng    *rand.Rand
	proc   int
	seq    int
	kvSeen map[string]int64
}

// unique is a value no other operation writes.
func (c *catalogClient) unique() string {
	c.seq++
	return fmt.Sprintf("p%d-%d", c.proc, c.seq)
}

// member is a random member.
func (c *catalogClient) member() int { return c.rng.Intn(len(c.w.apis)) }

// timeout is a context for one call.
func (c *catalogClient) timeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.w.opts.opTimeout())
}

// record adds one operation to the history; an unknown outcome's return
// is fixed up to "after everything" by Check and the client continues as a
// new process. It reports whether the operation succeeded.
func (c *catalogClient) record(in regInput, out regOutput, call int64, err error) bool {
	ret := c.env.Now()
	if err != nil {
		if in.Op == opGet || definitelyNotDone(err) {
			return false // it had no effect: leave it out
		}
		out, ret = regOutput{Unknown: true}, -1
	}
	c.w.record(porcupine.Operation{ClientId: c.proc, Input: in, Call: call, Output: out, Return: ret})
	if out.Unknown {
		c.proc = c.w.newProc()
		delete(c.kvSeen, in.Key)
	}
	return err == nil
}

// registration registers, deregisters or reads service instances. An
// instance is registered and deregistered on its own member's agent; a
// read (Health().Service at the default consistency, linearizable in
// synod) goes to a random member and is one read of every instance of
// the service.
func (c *catalogClient) registration(ctx context.Context) bool {
	svc := c.w.services.pick(c.rng)
	m, k := c.member(), c.rng.Intn(catalogInstances)
	id := fmt.Sprintf("%s-%s-%d", svc, c.env.Cluster.Name(m), k)
	in := regInput{Key: "service " + svc + "/" + id}
	cctx, cancel := c.timeout(ctx)
	defer cancel()
	call := c.env.Now()
	switch r := c.rng.Intn(10); {
	case r < 4:
		tag := c.unique()
		port := 1 + c.seq%60000
		in.Op, in.Value = opPut, instanceValue(tag, port)
		err := c.w.apis[m].Agent().ServiceRegisterOpts(&api.AgentServiceRegistration{ID: id, Name: svc, Port: port,
			Tags: []string{tag}}, api.ServiceRegisterOpts{}.WithContext(cctx))
		return c.record(in, regOutput{Unreported: true}, call, err)
	case r < 6:
		in.Op = opDelete
		err := c.w.apis[m].Agent().ServiceDeregisterOpts(id, (&api.QueryOptions{}).WithContext(cctx))
		found := !isStatus(err, http.StatusNotFound)
		if !found {
			err = nil
		}
		return c.record(in, regOutput{Unreported: true, Ok: found}, call, err)
	}
	entries, _, err := c.w.apis[c.member()].Health().Service(svc, "", false, (&api.QueryOptions{}).WithContext(cctx))
	ret := c.env.Now()
	if err != nil {
		return false
	}
	seen := map[string]string{}
	for _, e := range entries {
		if e.Service != nil && len(e.Service.Tags) == 1 {
			seen[e.Service.ID] = instanceValue(e.Service.Tags[0], e.Service.Port)
		}
	}
	for i := 0; i < c.env.Cluster.Size(); i++ {
		for k := 0; k < catalogInstances; k++ {
			id := fmt.Sprintf("%s-%s-%d", svc, c.env.Cluster.Name(i), k)
			c.w.record(opAt(c.proc, call, ret, regInput{Op: opGet, Key: "service " + svc + "/" + id},
				regOutput{Unreported: true, Value: seen[id]}))
		}
	}
	return true
}

// instanceValue is what the model holds of a registered instance: its one
// tag (unique to the registration) and its port.
func instanceValue(tag string, port int) string { return fmt.Sprintf("%s|%d", tag, port) }

// opAt is one completed operation of the history.
func opAt(proc int, call, ret int64, in regInput, out regOutput) porcupine.Operation {
	return porcupine.Operation{ClientId: proc, Input: in, Call: call, Output: out, Return: ret}
}

func (w *catalogWorkload) Check(_ context.Context, env *Env) Result {
	h := w.ops()
	fixUnknownReturns(h)
	unknown, kinds, checks := 0, map[string]int{}, 0
	for _, c := range w.checks {
		checks += c.made()
	}
	for _, op := range h {
		if op.Output.(regOutput).Unknown {
			unknown++
		}
		kind, _, _ := strings.Cut(op.Input.(regInput).Key, " ")
		kinds[kind]++
	}
	w.locks.mu.Lock()
	holds, lockAnomalies, sessions, unknownAcquires := w.locks.holds, w.locks.anomalies, w.locks.sessions, w.locks.unknown
	w.locks.mu.Unlock()
	res := Result{Workload: w.Name(), Verdict: VerdictOK,
		Summary: fmt.Sprintf("%d operations (%d on instances of %d services, %d on %d checks, %d on %d KV keys), %d with unknown outcome; %d lock holds in %d sessions, %d acquires with unknown outcome",
			len(h), kinds["service"], w.services.count(), kinds["check"], checks, kinds["kv"], w.kvKeys.count(),
			unknown, len(holds), sessions, unknownAcquires)}
	res = porcupineVerdict(res, registerModel, h, w.opts.CheckTimeout, env, func(op porcupine.Operation) string {
		return op.Input.(regInput).Key
	})
	lockAnomalies = append(lockAnomalies, judgeCatalogHolds(holds)...)
	if len(lockAnomalies) > 0 {
		res.Verdict = VerdictFail
		res.Anomalies = append(res.Anomalies, lockAnomalies...)
	}
	return res
}
