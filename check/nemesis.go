package check

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"sync"
	"time"
)

// A Nemesis injects one kind of fault into a running cluster.
//
// New kinds (lease expiry storms, disk faults, ...) are
// added by implementing Nemesis and listing a constructor in
// nemesisRegistry; the scheduler, the timeline and the report need no change.
type Nemesis interface {
	// Name is the name used by --nemesis.
	Name() string
	// Inject starts a fault. It returns ErrUnsupported if the build under
	// test lacks what the fault needs (the scheduler then stops choosing
	// this nemesis), or another error if the attempt failed (recorded on
	// the timeline; the run goes on).
	Inject(ctx context.Context, env *Env, rng *rand.Rand) (Fault, error)
}

// Fault is an injected fault.
type Fault struct {
	// Desc says what was done, for the timeline.
	Desc string
	// Heal undoes the fault; nil for instantaneous faults (a compaction, a
	// leader transfer). It is called even when the run is ending.
	Heal func(ctx context.Context) error
}

// ErrUnsupported marks a fault the build under test cannot take, such as a
// leader transfer before MoveLeader is implemented.
var ErrUnsupported = errors.New("not supported by the build under test")

// nemesisRegistry lists every nemesis by name, in the order of `all`.
var nemesisRegistry = []struct {
	name string
	make func() Nemesis
	doc  string
}{
	{"partition", func() Nemesis { return partitionNemesis{kinds: allPartitions} }, "a random partition: halves, the leader isolated, a ring, a bridge or a one-way cut"},
	{"partition-halves", func() Nemesis { return partitionNemesis{kinds: []partitionKind{halves}} }, "cut the cluster into two random halves"},
	{"partition-leader", func() Nemesis { return partitionNemesis{kinds: []partitionKind{isolateLeader}} }, "isolate the current leader"},
	{"partition-ring", func() Nemesis { return partitionNemesis{kinds: []partitionKind{ring}} }, "each member hears only its two ring neighbours"},
	{"partition-bridge", func() Nemesis { return partitionNemesis{kinds: []partitionKind{bridge}} }, "two halves joined by one member that sees both"},
	{"partition-oneway", func() Nemesis { return partitionNemesis{kinds: []partitionKind{oneWay}} }, "one member's outgoing links are cut, its incoming ones work"},
	{"netem", func() Nemesis { return netemNemesis{} }, "random links get delay with jitter, loss and a bandwidth cap"},
	{"kill", func() Nemesis { return killNemesis{} }, "kill -9 a member (sometimes the leader), restart it on heal"},
	{"kill-leader", func() Nemesis { return killNemesis{leader: true} }, "kill -9 the leader, restart it on heal"},
	{"pause", func() Nemesis { return pauseNemesis{} }, "SIGSTOP a member (sometimes the leader), SIGCONT on heal"},
	{"pause-leader", func() Nemesis { return pauseNemesis{leader: true} }, "SIGSTOP the leader, SIGCONT on heal"},
	{"leader-transfer", func() Nemesis { return transferNemesis{} }, "move leadership to a random follower (Maintenance.MoveLeader)"},
	{"compact", func() Nemesis { return compactNemesis{} }, "compact the keyspace at a recent revision during traffic"},
	{"member", func() Nemesis { return memberNemesis{} }, "remove a member (sometimes the leader), discard its data, add it back as a new member (sometimes as a learner, then promoted)"},
}

// NemesisNames lists the nemeses --nemesis accepts (besides all and none),
// each with a one-line description.
func NemesisNames() map[string]string {
	out := map[string]string{}
	for _, n := range nemesisRegistry {
		out[n.name] = n.doc
	}
	return out
}

// NemesisList lists the nemesis names in registry order.
func NemesisList() []string {
	var out []string
	for _, n := range nemesisRegistry {
		out = append(out, n.name)
	}
	return out
}

// ParseNemeses turns a --nemesis list into nemeses: names separated by
// commas, "all" for partition, netem, kill, pause, leader-transfer,
// compact and member, "none" for no faults.
func ParseNemeses(list string) ([]Nemesis, error) {
	var out []Nemesis
	seen := map[string]bool{}
	add := func(name string) error {
		for _, n := range nemesisRegistry {
			if n.name == name {
				if !seen[name] {
					seen[name] = true
					out = append(out, n.make())
				}
				return nil
			}
		}
		return fmt.Errorf("check: unknown nemesis %q (known: all, none, %s)", name, strings.Join(NemesisList(), ", "))
	}
	for _, name := range strings.Split(list, ",") {
		switch name = strings.TrimSpace(name); name {
		case "", "none":
		case "all":
			for _, n := range []string{"partition", "netem", "kill", "pause", "leader-transfer", "compact", "member"} {
				if err := add(n); err != nil {
					return nil, err
				}
			}
		default:
			if err := add(name); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// FaultEvent is one entry of the fault timeline.
type FaultEvent struct {
	// Nemesis names the nemesis.
	Nemesis string
	// Desc says what was done.
	Desc string
	// Start and End are nanoseconds since the run started; End equals
	// Start for an instantaneous fault.
	Start, End int64
	// Err is set when the fault could not be injected or healed.
	Err string
}

// Timeline records faults; safe for concurrent use.
type Timeline struct {
	mu     sync.Mutex
	events []FaultEvent
}

func (t *Timeline) add(ev FaultEvent) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.events = append(t.events, ev)
	return len(t.events) - 1
}

func (t *Timeline) finish(i int, end int64, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.events[i].End = end
	if err != nil {
		t.events[i].Err = strings.TrimPrefix(t.events[i].Err+"; heal: "+err.Error(), "; ")
	}
}

// Events returns a copy of the timeline.
func (t *Timeline) Events() []FaultEvent {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.events)
}

// Schedule is the timing of the nemesis loop.
type Schedule struct {
	// Quiet is the minimum healthy time between faults; a random extra of
	// up to Quiet is added.
	Quiet time.Duration
	// Hold is the minimum time a fault lasts; a random extra of up to Hold
	// is added.
	Hold time.Duration
}

// runNemeses injects faults from nemeses, one at a time, until ctx ends; a
// fault still active then is healed. Choices come from rng only, so the
// sequence of faults replays from the seed.
func runNemeses(ctx context.Context, env *Env, nemeses []Nemesis, rng *rand.Rand, sched Schedule, tl *Timeline) {
	active := slices.Clone(nemeses)
	for len(active) > 0 {
		if !sleepCtx(ctx, sched.Quiet+time.Duration(rng.Int63n(int64(sched.Quiet)+1))) {
			return
		}
		k := rng.Intn(len(active))
		n := active[k]
		hold := sched.Hold + time.Duration(rng.Int63n(int64(sched.Hold)+1))
		start := env.Now()
		f, err := n.Inject(ctx, env, rng)
		if errors.Is(err, ErrUnsupported) {
			tl.add(FaultEvent{Nemesis: n.Name(), Start: start, End: start, Err: "skipped for the rest of the run: " + err.Error()})
			env.Logf("nemesis %s: %v; skipped from now on", n.Name(), err)
			active = slices.Delete(active, k, k+1)
			continue
		}
		if err != nil {
			tl.add(FaultEvent{Nemesis: n.Name(), Start: start, End: env.Now(), Err: err.Error()})
			env.Logf("nemesis %s: %v", n.Name(), err)
			continue
		}
		idx := tl.add(FaultEvent{Nemesis: n.Name(), Desc: f.Desc, Start: start, End: start})
		env.Logf("nemesis %s: %s", n.Name(), f.Desc)
		if f.Heal == nil {
			continue
		}
		sleepCtx(ctx, hold)
		hctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		herr := f.Heal(hctx)
		cancel()
		tl.finish(idx, env.Now(), herr)
		env.Logf("nemesis %s: healed", n.Name())
	}
}

// sleepCtx sleeps for d; it returns false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
