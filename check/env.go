package check

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Env is what workloads and nemeses share during a run: the cluster, one
// administrative client per member, the members' IDs and the run's clock.
// Its methods are safe for concurrent use.
type Env struct {
	// Cluster is the cluster under test.
	Cluster *Cluster
	// Start is when the run started; history timestamps are nanoseconds
	// since Start.
	Start time.Time
	// Seed is the run's seed.
	Seed int64
	// Progress receives one line per notable event; never nil.
	Progress io.Writer
	// Timeline records the faults injected so far.
	Timeline *Timeline

	admin []*clientv3.Client
	ids   []uint64 // member IDs by index
	mu    sync.Mutex
}

// newEnv connects an administrative client to every member.
func newEnv(c *Cluster, seed int64, progress io.Writer) (*Env, error) {
	e := &Env{Cluster: c, Seed: seed, Progress: progress, Start: time.Now(), Timeline: &Timeline{}}
	for i := 0; i < c.Size(); i++ {
		cli, err := c.Client(i)
		if err != nil {
			e.close()
			return nil, fmt.Errorf("check: client of %s: %w", c.Name(i), err)
		}
		e.admin = append(e.admin, cli)
	}
	e.ids = make([]uint64, c.Size())
	return e, nil
}

func (e *Env) close() {
	for _, c := range e.admin {
		c.Close()
	}
}

// Now is the time since the start of the run in nanoseconds.
func (e *Env) Now() int64 { return int64(time.Since(e.Start)) }

// Admin is the administrative client pinned to member i.
func (e *Env) Admin(i int) *clientv3.Client { return e.admin[i] }

// Logf writes a progress line.
func (e *Env) Logf(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	fmt.Fprintf(e.Progress, "[%6.1fs] "+format+"\n", append([]any{time.Since(e.Start).Seconds()}, args...)...)
}

// status asks member i for its status within a short deadline and records
// its member ID.
func (e *Env) status(ctx context.Context, i int) (*clientv3.StatusResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	st, err := e.Cluster.Status(ctx, e.admin[i], i)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.ids[i] = st.Header.MemberId
	e.mu.Unlock()
	return st, nil
}

// indexOf maps a member ID to its index, or -1.
func (e *Env) indexOf(id uint64) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, x := range e.ids {
		if x == id && id != 0 {
			return i
		}
	}
	return -1
}

// MemberID returns member i's ID, once known (0 before).
func (e *Env) MemberID(i int) uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ids[i]
}

// ErrNoLeader is returned by Leader when no reachable member knows a leader.
var ErrNoLeader = errors.New("check: no member reports a leader")

// Leader returns the index of the member that reachable members report as
// leader (the first answer that names a known member).
func (e *Env) Leader(ctx context.Context) (int, error) {
	for i := 0; i < e.Cluster.Size(); i++ {
		if !e.Cluster.members[i].running() || e.Cluster.members[i].isPaused() {
			continue
		}
		st, err := e.status(ctx, i)
		if err != nil || st.Leader == 0 {
			continue
		}
		if l := e.indexOf(st.Leader); l >= 0 {
			return l, nil
		}
	}
	return -1, ErrNoLeader
}

// WaitHealthy waits until every member answers a status naming the same
// leader and a linearizable read through every member succeeds, or ctx ends.
func (e *Env) WaitHealthy(ctx context.Context) error {
	var last error
	for {
		if last = e.healthy(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("check: cluster not healthy: %w (last: %v)", ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (e *Env) healthy(ctx context.Context) error {
	var leader uint64
	for i := 0; i < e.Cluster.Size(); i++ {
		st, err := e.status(ctx, i)
		if err != nil {
			return fmt.Errorf("%s: %w", e.Cluster.Name(i), err)
		}
		if st.Leader == 0 || (leader != 0 && st.Leader != leader) {
			return fmt.Errorf("%s: leader %x, others %x", e.Cluster.Name(i), st.Leader, leader)
		}
		leader = st.Leader
	}
	for i := 0; i < e.Cluster.Size(); i++ {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := e.admin[i].Get(rctx, "check/health")
		cancel()
		if err != nil {
			return fmt.Errorf("%s: read: %w", e.Cluster.Name(i), err)
		}
	}
	return nil
}
