package check

import (
	"context"
	"errors"
	"math/rand"
	"syscall"
	"time"

	"github.com/hashicorp/consul/api"
)

// definitelyNotDone reports whether a Consul API call's error means the
// request had no effect: the connection was refused (the member is down,
// nothing was sent) or the server refused the request as bad (a 4xx).
// Every other failure (a timeout, a reset mid-request, a 5xx such as
// "No cluster leader" after a write may have been proposed) is an unknown
// outcome, which may or may not have happened.
func definitelyNotDone(err error) bool {
	var se api.StatusError
	if errors.As(err, &se) {
		return se.Code >= 400 && se.Code < 500
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// isStatus reports whether err is the Consul API's answer with that code.
func isStatus(err error, code int) bool {
	var se api.StatusError
	return errors.As(err, &se) && se.Code == code
}

// setupChecks puts member i's first TTL checks in use.
func (w *catalogWorkload) setupChecks(ctx context.Context, env *Env, i int) {
	c := &catalogClient{w: w, env: env, rng: rand.New(rand.NewSource(env.Seed + 4000 + int64(i))), proc: w.newProc()}
	for _, slot := range w.checks {
		if slot.member == i {
			c.newCheck(ctx, slot)
		}
	}
}

// newCheck registers the slot's next TTL check on its member's agent
// (retrying until acknowledged), gives it a first status through the
// history, so that every later read has a write to be judged against, and
// puts it in use. The TTL is far longer than the run: statuses change only
// through the workload.
func (c *catalogClient) newCheck(ctx context.Context, slot *checkSlot) {
	id := slot.next(c.env.Cluster.Name(slot.member))
	reg := &api.AgentCheckRegistration{ID: id, Name: id,
		AgentServiceCheck: api.AgentServiceCheck{TTL: catalogCheckTTL, Status: api.HealthPassing}}
	for ctx.Err() == nil && !c.try(ctx, func(cctx context.Context) error {
		return c.w.apis[slot.member].Agent().CheckRegisterOpts(reg, (&api.QueryOptions{}).WithContext(cctx))
	}) {
	}
	for ctx.Err() == nil && !c.flip(ctx, slot.member, id) {
		sleepCtx(ctx, failureBackoff)
	}
	if ctx.Err() == nil {
		slot.ready(id)
	}
}

// try makes one call with the client's timeout and backs off after a
// failure; it reports whether the call succeeded.
func (c *catalogClient) try(ctx context.Context, call func(context.Context) error) bool {
	cctx, cancel := c.timeout(ctx)
	err := call(cctx)
	cancel()
	if err != nil {
		sleepCtx(ctx, failureBackoff+time.Duration(c.rng.Int63n(int64(failureBackoff))))
	}
	return err == nil
}

var checkStatuses = []string{api.HealthPassing, api.HealthWarning, api.HealthCritical}

// checkOp flips a ready TTL check (Agent().UpdateTTL on its own member's
// agent, with a unique output) or reads a member's checks (Health().Node
// on a random member, one read per check of that node).
func (c *catalogClient) checkOp(ctx context.Context) bool {
	slot := c.w.checks[c.rng.Intn(len(c.w.checks))]
	id, retire := slot.use()
	if retire {
		defer c.newCheck(ctx, slot)
	}
	switch {
	case id == "":
		return false
	case c.rng.Intn(2) == 0:
		return c.flip(ctx, slot.member, id)
	}
	var ids []string
	for _, s := range c.w.checks {
		if s.member == slot.member && s != slot && s.current() != "" {
			ids = append(ids, s.current())
		}
	}
	ids = append(ids, id)
	cctx, cancel := c.timeout(ctx)
	defer cancel()
	call := c.env.Now()
	checks, _, err := c.w.apis[c.member()].Health().Node(c.env.Cluster.Name(slot.member), (&api.QueryOptions{}).WithContext(cctx))
	ret := c.env.Now()
	if err != nil {
		return false
	}
	seen := map[string]string{}
	for _, hc := range checks {
		seen[hc.CheckID] = checkValue(hc.Status, hc.Output)
	}
	for _, id := range ids {
		c.w.record(opAt(c.proc, call, ret, regInput{Op: opGet, Key: "check " + id},
			regOutput{Unreported: true, Value: seen[id]}))
	}
	return true
}

// flip sets a check's status and a unique output through its agent.
func (c *catalogClient) flip(ctx context.Context, member int, id string) bool {
	status, note := checkStatuses[c.rng.Intn(len(checkStatuses))], c.unique()
	in := regInput{Op: opPut, Key: "check " + id, Value: checkValue(status, note)}
	cctx, cancel := c.timeout(ctx)
	defer cancel()
	call := c.env.Now()
	err := c.w.apis[member].Agent().UpdateTTLOpts(id, note, status, (&api.QueryOptions{}).WithContext(cctx))
	return c.record(in, regOutput{Unreported: true}, call, err)
}

// checkValue is what the model holds of a check: its status and output.
func checkValue(status, output string) string { return status + "|" + output }

// kvOp reads a Consul KV key (KV().Get, linearizable: its ModifyIndex is
// the revision the model checks), puts it, or compare-and-sets it on the
// ModifyIndex this client last saw (0: create only), each through a random
// member. PUT and CAS answer only true or false.
func (c *catalogClient) kvOp(ctx context.Context) bool {
	key := c.w.kvKeys.pick(c.rng)
	in := regInput{Key: "kv " + key}
	kv := c.w.apis[c.member()].KV()
	cctx, cancel := c.timeout(ctx)
	defer cancel()
	wo := (&api.WriteOptions{}).WithContext(cctx)
	call := c.env.Now()
	switch r := c.rng.Intn(10); {
	case r < 4:
		in.Op = opGet
		pair, _, err := kv.Get(key, (&api.QueryOptions{}).WithContext(cctx))
		out := regOutput{}
		if pair != nil {
			out = regOutput{Value: string(pair.Value), Rev: int64(pair.ModifyIndex)}
			c.kvSeen[in.Key] = out.Rev
		} else if err == nil {
			c.kvSeen[in.Key] = 0
		}
		return c.record(in, out, call, err)
	case r < 6:
		in.Op, in.Value = opPut, c.unique()
		_, err := kv.Put(&api.KVPair{Key: key, Value: []byte(in.Value)}, wo)
		return c.record(in, regOutput{Unreported: true}, call, err)
	}
	in.Op, in.Value, in.ExpectRev = opCASRev, c.unique(), c.kvSeen[in.Key]
	ok, _, err := kv.CAS(&api.KVPair{Key: key, Value: []byte(in.Value), ModifyIndex: uint64(in.ExpectRev)}, wo)
	return c.record(in, regOutput{Unreported: true, Ok: ok}, call, err)
}
