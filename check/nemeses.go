package check

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/synod-db/synod/check/faultproxy"
)

// partitionKind decides which ordered links work: connected(i, j) says
// whether i's messages reach j.
type partitionKind func(n, leader int, rng *rand.Rand) (connected func(i, j int) bool, desc string)

var allPartitions = []partitionKind{halves, isolateLeader, ring, bridge, oneWay}

func halves(n, _ int, rng *rand.Rand) (func(i, j int) bool, string) {
	perm := rng.Perm(n)
	side := make([]int, n)
	for k, m := range perm {
		if k >= n/2 {
			side[m] = 1
		}
	}
	return func(i, j int) bool { return side[i] == side[j] }, "halves " + groups(side)
}

func isolateLeader(n, leader int, rng *rand.Rand) (func(i, j int) bool, string) {
	if leader < 0 {
		leader = rng.Intn(n)
	}
	side := make([]int, n)
	side[leader] = 1
	return func(i, j int) bool { return side[i] == side[j] }, fmt.Sprintf("leader m%d isolated", leader+1)
}

func ring(n, _ int, rng *rand.Rand) (func(i, j int) bool, string) {
	perm := rng.Perm(n)
	pos := make([]int, n)
	for k, m := range perm {
		pos[m] = k
	}
	var names []string
	for _, m := range perm {
		names = append(names, fmt.Sprintf("m%d", m+1))
	}
	return func(i, j int) bool {
		d := (pos[i] - pos[j] + n) % n
		return d <= 1 || d == n-1
	}, "ring " + strings.Join(names, "-")
}

func bridge(n, _ int, rng *rand.Rand) (func(i, j int) bool, string) {
	perm := rng.Perm(n)
	b := perm[0]
	side := make([]int, n)
	for k, m := range perm[1:] {
		side[m] = k % 2
	}
	side[b] = -1
	return func(i, j int) bool { return i == b || j == b || side[i] == side[j] },
		fmt.Sprintf("bridge m%d between %s", b+1, groups(side))
}

func oneWay(n, _ int, rng *rand.Rand) (func(i, j int) bool, string) {
	x := rng.Intn(n)
	return func(i, j int) bool { return i != x }, fmt.Sprintf("m%d cannot send (it still receives)", x+1)
}

// groups renders a side assignment as {m1 m3} {m2}; side -1 is left out.
func groups(side []int) string {
	var a, b []string
	for m, s := range side {
		switch s {
		case 0:
			a = append(a, fmt.Sprintf("m%d", m+1))
		case 1:
			b = append(b, fmt.Sprintf("m%d", m+1))
		}
	}
	return "{" + strings.Join(a, " ") + "} {" + strings.Join(b, " ") + "}"
}

// partitionNemesis blackholes every link a random partition kind cuts.
type partitionNemesis struct{ kinds []partitionKind }

func (p partitionNemesis) Name() string { return "partition" }

func (p partitionNemesis) Inject(ctx context.Context, env *Env, rng *rand.Rand) (Fault, error) {
	n := env.Cluster.Size()
	if n < 2 {
		return Fault{}, fmt.Errorf("a partition needs at least 2 members: %w", ErrUnsupported)
	}
	leader, _ := env.Leader(ctx)
	connected, desc := p.kinds[rng.Intn(len(p.kinds))](n, leader, rng)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			if i != j && !connected(i, j) {
				if err := env.Cluster.SetLink(i, j, faultproxy.Faults{Blackhole: true}); err != nil {
					env.Cluster.HealNetwork()
					return Fault{}, err
				}
			}
		}
	}
	return Fault{Desc: desc, Heal: healNetwork(env)}, nil
}

func healNetwork(env *Env) func(context.Context) error {
	return func(context.Context) error { env.Cluster.HealNetwork(); return nil }
}

// netemNemesis degrades random links: delay with jitter, loss, a bandwidth
// cap, each chosen per link.
type netemNemesis struct{}

func (netemNemesis) Name() string { return "netem" }

func (netemNemesis) Inject(_ context.Context, env *Env, rng *rand.Rand) (Fault, error) {
	n := env.Cluster.Size()
	if n < 2 {
		return Fault{}, fmt.Errorf("links need at least 2 members: %w", ErrUnsupported)
	}
	var parts []string
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			if i == j || rng.Intn(2) == 0 {
				continue
			}
			delay := time.Duration(10+rng.Intn(190)) * time.Millisecond
			f := faultproxy.Faults{Delay: delay, Jitter: time.Duration(rng.Int63n(int64(delay)))}
			if rng.Intn(3) == 0 {
				f.DropRate = float64(1+rng.Intn(5)) / 100
			}
			if rng.Intn(3) == 0 {
				f.BytesPerSecond = int64(64<<10) << rng.Intn(5)
			}
			if err := env.Cluster.SetLink(i, j, f); err != nil {
				env.Cluster.HealNetwork()
				return Fault{}, err
			}
			parts = append(parts, fmt.Sprintf("m%d→m%d %s", i+1, j+1, f))
		}
	}
	if len(parts) == 0 {
		parts = append(parts, "no link chosen")
	}
	return Fault{Desc: strings.Join(parts, "; "), Heal: healNetwork(env)}, nil
}

// victim picks the leader when leader is set, else the leader with
// probability 1/3 (when one is known), else a random member.
func victim(ctx context.Context, env *Env, rng *rand.Rand, leader bool) (int, string) {
	if leader || rng.Intn(3) == 0 {
		if l, err := env.Leader(ctx); err == nil {
			return l, fmt.Sprintf("leader m%d", l+1)
		}
	}
	i := rng.Intn(env.Cluster.Size())
	return i, fmt.Sprintf("m%d", i+1)
}

// killNemesis kills a member (the leader, if leader is set) with SIGKILL;
// healing restarts it from its data directory.
type killNemesis struct{ leader bool }

func (k killNemesis) Name() string {
	if k.leader {
		return "kill-leader"
	}
	return "kill"
}

func (k killNemesis) Inject(ctx context.Context, env *Env, rng *rand.Rand) (Fault, error) {
	i, who := victim(ctx, env, rng, k.leader)
	if err := env.Cluster.Kill(i); err != nil {
		return Fault{}, err
	}
	return Fault{Desc: "kill -9 " + who, Heal: func(context.Context) error { return env.Cluster.Restart(i) }}, nil
}

// pauseNemesis stops a member (the leader, if leader is set) with SIGSTOP;
// healing continues it.
type pauseNemesis struct{ leader bool }

func (p pauseNemesis) Name() string {
	if p.leader {
		return "pause-leader"
	}
	return "pause"
}

func (p pauseNemesis) Inject(ctx context.Context, env *Env, rng *rand.Rand) (Fault, error) {
	i, who := victim(ctx, env, rng, p.leader)
	if err := env.Cluster.Pause(i); err != nil {
		return Fault{}, err
	}
	return Fault{Desc: "SIGSTOP " + who, Heal: func(context.Context) error { return env.Cluster.Resume(i) }}, nil
}

// transferNemesis moves leadership to a random follower through
// Maintenance.MoveLeader on the leader.
type transferNemesis struct{}

func (transferNemesis) Name() string { return "leader-transfer" }

func (transferNemesis) Inject(ctx context.Context, env *Env, rng *rand.Rand) (Fault, error) {
	n := env.Cluster.Size()
	if n < 2 {
		return Fault{}, fmt.Errorf("a transfer needs at least 2 members: %w", ErrUnsupported)
	}
	l, err := env.Leader(ctx)
	if err != nil {
		return Fault{}, err
	}
	to := (l + 1 + rng.Intn(n-1)) % n
	id := env.MemberID(to)
	if id == 0 {
		return Fault{}, fmt.Errorf("m%d's member ID is not known yet", to+1)
	}
	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = env.Admin(l).MoveLeader(tctx, id)
	if status.Code(err) == codes.Unimplemented {
		return Fault{}, fmt.Errorf("MoveLeader: %w", ErrUnsupported)
	}
	if err != nil {
		return Fault{}, fmt.Errorf("MoveLeader m%d→m%d: %w", l+1, to+1, err)
	}
	return Fault{Desc: fmt.Sprintf("leadership m%d→m%d", l+1, to+1)}, nil
}

// compactNemesis compacts at a revision a little behind the current one,
// sometimes physically.
type compactNemesis struct{}

func (compactNemesis) Name() string { return "compact" }

func (compactNemesis) Inject(ctx context.Context, env *Env, rng *rand.Rand) (Fault, error) {
	i := rng.Intn(env.Cluster.Size())
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := env.Admin(i).Get(cctx, "check/compact-probe")
	if err != nil {
		return Fault{}, fmt.Errorf("reading the revision through m%d: %w", i+1, err)
	}
	rev := resp.Header.Revision - int64(rng.Intn(50))
	if rev < 1 {
		rev = 1
	}
	var opts []clientv3.CompactOption
	kind := "compact"
	if rng.Intn(2) == 0 {
		opts, kind = append(opts, clientv3.WithCompactPhysical()), "physical compact"
	}
	_, err = env.Admin(i).Compact(cctx, rev, opts...)
	if errors.Is(err, rpctypes.ErrCompacted) {
		return Fault{Desc: fmt.Sprintf("%s at %d through m%d: already compacted", kind, rev, i+1)}, nil
	}
	if err != nil {
		return Fault{}, fmt.Errorf("%s at %d through m%d: %w", kind, rev, i+1, err)
	}
	return Fault{Desc: fmt.Sprintf("%s at %d through m%d", kind, rev, i+1)}, nil
}
