package simulation

import (
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"go.etcd.io/raft/v3"

	"github.com/synod-db/synod/kvmodel"
)

// Run lengths (simulated ms).
const (
	workloadLength = 2000 // clients and faults
	settleLimit    = 8000 // after healing, time allowed to converge
	sampleEvery    = 250  // state hash sampling period
)

// Config is one run.
type Config struct {
	// Seed determines everything about the run. The caller must also make
	// crypto/rand deterministic from it (raft draws its election timeouts
	// from crypto/rand): in a test, testing/cryptotest.SetGlobalRandom.
	Seed uint64
	// Trace, if set, receives every trace line as it happens.
	Trace io.Writer
}

// Result is what a run found.
type Result struct {
	Seed uint64
	// Digest is the SHA-256 of the whole trace: two runs of one seed are
	// the same run exactly when their digests are equal.
	Digest string
	// Summary describes the run's shape (members, network, history size).
	Summary string
	// Anomalies is empty when every check passed.
	Anomalies []string
	// Tail is the end of the trace, for failure reports.
	Tail []string
}

// Failed reports whether the run found an anomaly.
func (r Result) Failed() bool { return len(r.Anomalies) > 0 }

// Run runs one seed: it builds a cluster, runs the workload under faults,
// heals everything, lets the cluster converge and checks the outcome.
func Run(cfg Config) Result {
	c := newCluster(cfg.Seed, cfg.Trace)
	size := 3
	if c.rng.IntN(10) < 3 {
		size = 5
	}
	c.net.cfg = netConfig{
		MinDelay: 1, MaxDelay: Time(2 + c.rng.IntN(15)),
		Loss: c.rng.Float64() * 0.1, Dup: c.rng.Float64() * 0.05, Reorder: c.rng.Float64() * 0.1,
	}
	c.snapshotCount = uint64(5 + c.rng.IntN(25))
	c.catchUpEntries = uint64(1 + c.rng.IntN(int(c.snapshotCount/2)))
	c.tracef("seed %d: %d members, net %+v, snapshot every %d keeping %d", cfg.Seed, size, c.net.cfg, c.snapshotCount, c.catchUpEntries)
	dir, err := os.MkdirTemp("", "synod-sim-*")
	if err != nil {
		return c.result(cfg.Seed, []string{err.Error()})
	}
	defer os.RemoveAll(dir)
	defer c.closeAll()
	c.snapRoot = dir
	c.workloadEnd = workloadLength
	if err := c.bootstrap(size); err != nil {
		return c.result(cfg.Seed, []string{err.Error()})
	}
	for i := 0; i < 2*size-1; i++ {
		cl := &client{id: i, seen: map[string]kvmodel.RegOutput{}, c: c}
		c.clients = append(c.clients, cl)
		c.sched.after(Time(c.rng.IntN(50)), cl.next)
	}
	c.sched.after(Time(200+c.rng.IntN(200)), c.nemesis)
	c.sched.after(leaseCheckTick, c.expireLeases)
	var converged []*member
	c.guarded(func() {
		c.sampleHashes()
		for c.err == nil && c.sched.step(c.workloadEnd) {
		}
		converged = c.settle()
	})
	return c.result(cfg.Seed, c.verify(converged))
}

// guarded runs fn, turning a panic into the run's fatal error: raft panics
// when it finds its own invariants broken (a log that lost committed
// entries, say), which in a real member stops the process.
func (c *cluster) guarded(fn func()) {
	defer func() {
		if r := recover(); r != nil {
			c.fail(fmt.Errorf("panic: %v", r))
		}
	}()
	fn()
}

// closeAll closes every member's database (after the checks read them).
func (c *cluster) closeAll() {
	for _, m := range c.members {
		if m.disk.db != nil {
			_ = m.disk.close()
		}
	}
}

// bootstrap starts the founding members.
func (c *cluster) bootstrap(size int) error {
	peers := make([]raft.Peer, size)
	for i := range peers {
		peers[i] = raft.Peer{ID: uint64(i + 1), Context: peerContext(uint64(i + 1))}
	}
	for i := 0; i < size; i++ {
		if _, err := c.addMember(true, peers); err != nil {
			return err
		}
	}
	return nil
}

// sampleHashes records every live member's state hash now and periodically.
func (c *cluster) sampleHashes() {
	c.hashes.sample()
	c.sched.after(sampleEvery, c.sampleHashes)
}

// settle heals the network, restarts crashed members and runs until every
// member of the leader's configuration has applied the leader's commit
// index with no client call pending, or the limit passes. It returns the
// converged members, or nil.
func (c *cluster) settle() []*member {
	c.net.heal()
	c.tracef("settle: heal all, resume and restart all")
	for _, m := range c.members {
		c.resume(m)
		c.restart(m)
	}
	deadline := c.workloadEnd + settleLimit
	for c.err == nil && c.sched.now < deadline {
		c.sched.runUntil(c.sched.now + 10)
		if ms := c.converged(); ms != nil {
			c.tracef("converged at %d", ms[0].core.AppliedIndex())
			return ms
		}
	}
	return nil
}

// converged returns the members of the leader's configuration when they
// all are live and applied exactly the leader's last index, which the leader
// has committed, and the clients are done.
func (c *cluster) converged() []*member {
	l := c.leader()
	if l == nil {
		return nil
	}
	// Everything in the leader's log, its own term's first entry included,
	// must be committed and applied: until that entry commits, the commit
	// index may lag entries an earlier leader committed (and acknowledged).
	last, err := l.disk.log.LastIndex()
	applied := l.core.AppliedIndex()
	if err != nil || applied != l.status().GetCommit() || applied != last {
		return nil
	}
	var ms []*member
	for _, id := range append(l.voters(), l.learners()...) {
		m := c.member(id)
		if m == nil || !m.up || m.core.AppliedIndex() != applied || m.pending() {
			return nil
		}
		ms = append(ms, m)
	}
	return ms
}

// verify runs the checks at the end of a run.
func (c *cluster) verify(converged []*member) []string {
	var out []string
	if c.err != nil {
		out = append(out, "fatal: "+c.err.Error())
	}
	if converged == nil && c.err == nil {
		out = append(out, fmt.Sprintf("cluster did not converge within %d ms of healing", settleLimit))
	}
	c.guarded(c.hashes.sample)
	out = append(out, c.hashes.bad...)
	if converged != nil {
		out = append(out, c.lostWrites(converged)...)
		out = append(out, c.checkLeases(converged)...)
	}
	out = append(out, c.checkAlarms()...)
	return append(out, c.linearizable()...)
}

func (c *cluster) result(seed uint64, anomalies []string) Result {
	unknown := 0
	for _, op := range c.history {
		if op.Return < 0 {
			unknown++
		}
	}
	return Result{
		Seed:      seed,
		Digest:    hex.EncodeToString(c.digest.Sum(nil)),
		Summary:   fmt.Sprintf("%d members created, %d ops (%d unknown), %d acked writes", len(c.members), len(c.history), unknown, len(c.acked)),
		Anomalies: anomalies,
		Tail:      c.tail,
	}
}
