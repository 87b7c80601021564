package lease

import (
	"bytes"
	"container/heap"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// MaxTTL is the largest TTL, in seconds, a grant may ask for (etcd's
// lease.MaxLeaseTTL).
const MaxTTL = 9000000000

// DefaultRetryInterval is how long Expired waits before it reports a lease
// it already reported and that is still there (etcd's
// expiredLeaseRetryInterval): the revocation it led to was lost, or
// skipped because the lease was renewed meanwhile.
const DefaultRetryInterval = 3 * time.Second

// Errors of the lease state machine. They are deterministic request-level
// errors: every member applying the same entry returns the same one. The
// API edge maps them to etcd's gRPC statuses (etcdapi/errors.go).
var (
	// ErrNotFound: the lease does not exist (or a grant asked for ID 0).
	ErrNotFound = errors.New("lease: requested lease not found")
	// ErrExists: a grant asked for the ID of a lease that exists.
	ErrExists = errors.New("lease: lease already exists")
	// ErrTTLTooLarge: a grant asked for a TTL above MaxTTL.
	ErrTTLTooLarge = errors.New("lease: too large lease TTL")
)

// MissingError is the error of a LeaseCheckpoint entry that renews leases
// which do not exist when it applies: it names them, in entry order, so that
// the renewals of one entry (coalesced keep-alives of many clients) can each
// be answered. It is ErrNotFound for errors.Is. The entry's other changes are
// applied all the same.
type MissingError struct {
	// IDs are the leases the entry renewed that did not exist.
	IDs []int64
}

// Error names the first missing lease (the message is ErrNotFound's).
func (e *MissingError) Error() string {
	return fmt.Sprintf("%v: %016x (%d missing)", ErrNotFound, e.IDs[0], len(e.IDs))
}

// Unwrap is ErrNotFound.
func (e *MissingError) Unwrap() error { return ErrNotFound }

// Clock returns the current time. Expiries are compared with its monotonic
// readings only (time.Now is the production clock).
type Clock func() time.Time

// Record is the replicated, persisted state of one lease.
type Record struct {
	// ID is the lease ID (never 0).
	ID int64
	// TTL is the granted TTL in seconds.
	TTL int64
	// RenewIndex is the raft index of the entry that granted or last renewed
	// the lease. An expiry proposal names it, so that a renewal applied
	// after the leader decided to expire the lease cancels the expiry.
	RenewIndex uint64
}

// Status is a member's local view of one lease.
type Status struct {
	// ID is the lease ID.
	ID int64
	// TTL is the granted TTL in seconds.
	TTL int64
	// RenewIndex is the raft index of the lease's grant or last renewal.
	RenewIndex uint64
	// Remaining is the time until the lease expires on this member's clock;
	// zero or negative once it has expired (its revocation is pending).
	Remaining time.Duration
	// Keys are the attached keys in byte order (filled only when asked).
	Keys [][]byte
}

// RemainingSeconds is Remaining in whole seconds, truncated as etcd reports
// a lease's remaining TTL, and never negative.
func (s Status) RemainingSeconds() int64 {
	if s.Remaining <= 0 {
		return 0
	}
	return int64(s.Remaining / time.Second)
}

// Expiry names a lease the leader should expire: the lease ID and the
// renewal index the expiry is conditional on.
type Expiry struct {
	// ID is the expired lease.
	ID int64
	// RenewIndex is the lease's Record.RenewIndex when it was found expired.
	RenewIndex uint64
}

// Config configures a Lessor.
type Config struct {
	// Clock is the time source; nil means time.Now.
	Clock Clock
	// RetryInterval is how long Expired waits before reporting a lease
	// again; 0 means DefaultRetryInterval.
	RetryInterval time.Duration
}

// Lessor holds every lease of a member: the replicated records, the keys
// attached to each, and this member's expiry of each.
type Lessor struct {
	clock Clock
	retry time.Duration

	stats struct{ granted, renewed, revoked atomic.Uint64 }

	mu     sync.RWMutex
	leases map[int64]*entry
	items  map[string]int64 // attached key → lease
	queue  expiryQueue
}

// entry is one lease in memory.
type entry struct {
	Record
	expiry  time.Time           // local: apply (or load) time + TTL
	checkAt time.Time           // when Expired may next report it (>= expiry)
	index   int                 // position in the queue
	keys    map[string]struct{} // attached keys
}

// New returns an empty Lessor.
func New(cfg Config) *Lessor {
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = DefaultRetryInterval
	}
	return &Lessor{clock: cfg.Clock, retry: cfg.RetryInterval, leases: map[int64]*entry{}, items: map[string]int64{}}
}

// Exists reports whether lease id exists (mvcc.Options.LeaseExists).
func (l *Lessor) Exists(id int64) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.leases[id] != nil
}

// Lookup returns this member's view of lease id; withKeys fills Keys.
func (l *Lessor) Lookup(id int64, withKeys bool) (Status, bool) {
	now := l.clock()
	l.mu.RLock()
	defer l.mu.RUnlock()
	e := l.leases[id]
	if e == nil {
		return Status{}, false
	}
	st := Status{ID: id, TTL: e.TTL, RenewIndex: e.RenewIndex, Remaining: e.expiry.Sub(now)}
	if withKeys {
		st.Keys = sortedKeys(e.keys)
	}
	return st, true
}

// IDs returns the IDs of every lease, in increasing order.
func (l *Lessor) IDs() []int64 {
	l.mu.RLock()
	ids := make([]int64, 0, len(l.leases))
	for id := range l.leases {
		ids = append(ids, id)
	}
	l.mu.RUnlock()
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// Len is the number of leases.
func (l *Lessor) Len() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.leases)
}

// Expired returns up to max leases whose expiry has passed on this member's
// clock, earliest first, skipping those it reported less than the retry
// interval ago. Only the leader calls it, and proposes an expiry for each.
func (l *Lessor) Expired(max int) []Expiry {
	now := l.clock()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Expiry
	for len(out) < max && len(l.queue) > 0 {
		e := l.queue[0]
		if e.checkAt.After(now) {
			break
		}
		out = append(out, Expiry{ID: e.ID, RenewIndex: e.RenewIndex})
		e.checkAt = now.Add(l.retry)
		heap.Fix(&l.queue, 0)
	}
	return out
}

// Change is what one applied lease entry does to the replicated state. Plan*
// compute it from the current state without changing anything; the caller
// writes it (Write, and DeleteKeys in one mvcc revision) in the entry's
// batch, then Commits it to memory once the batch is committed.
type Change struct {
	// Put are the records written: a grant, or renewals (with the entry's
	// index as RenewIndex).
	Put []Record
	// Remove are the leases deleted (revoked or expired), in order.
	Remove []int64
	// DeleteKeys are the keys attached to the removed leases, in byte order:
	// they are deleted in one revision together with the leases.
	DeleteKeys [][]byte
}

// PlanGrant checks a grant of lease id with ttl at raft index index:
// ErrNotFound for ID 0, ErrTTLTooLarge above MaxTTL, ErrExists for a lease
// that exists (in etcd's order). A TTL below 1 s is granted as 1 s (the API
// edge has already raised it to the minimum TTL).
func (l *Lessor) PlanGrant(id, ttl int64, index uint64) (Change, error) {
	if id == 0 {
		return Change{}, ErrNotFound
	}
	if ttl > MaxTTL {
		return Change{}, ErrTTLTooLarge
	}
	if l.Exists(id) {
		return Change{}, ErrExists
	}
	return Change{Put: []Record{{ID: id, TTL: max(ttl, 1), RenewIndex: index}}}, nil
}

// PlanRevoke checks a revocation of lease id: ErrNotFound if it does not exist.
func (l *Lessor) PlanRevoke(id int64) (Change, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	e := l.leases[id]
	if e == nil {
		return Change{}, ErrNotFound
	}
	return Change{Remove: []int64{id}, DeleteKeys: sortedKeys(e.keys)}, nil
}

// PlanCheckpoints evaluates a LeaseCheckpoint entry at raft index index, in
// order. A checkpoint with Remaining_TTL > 0 renews the lease for its granted
// TTL (the value itself is not used). One with Remaining_TTL < 0 is an expiry
// proposed by a leader: it removes the lease only if the lease's RenewIndex
// (including renewals earlier in this entry) is still -Remaining_TTL, so that
// a renewal applied after the leader's decision cancels it. Remaining_TTL == 0
// does nothing. Renewing leases that do not exist returns a *MissingError
// (ErrNotFound) naming them, together with the rest of the change, which must
// still be applied.
func (l *Lessor) PlanCheckpoints(cps []*pb.LeaseCheckpoint, index uint64) (Change, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var c Change
	var missing []int64
	// The renewals earlier in this entry and the leases it removed matter
	// only once it holds an expiry (a leader proposes those on their own):
	// the maps are built then, so a batch of renewals allocates none.
	var renewed map[int64]uint64
	var removed map[int64]bool
	for _, cp := range cps {
		e := l.leases[cp.GetID()]
		if e == nil || removed[cp.GetID()] {
			if cp.GetRemaining_TTL() > 0 {
				missing = append(missing, cp.GetID())
			}
			continue
		}
		switch ttl := cp.GetRemaining_TTL(); {
		case ttl > 0:
			if c.Put == nil {
				c.Put = make([]Record, 0, len(cps))
			}
			c.Put = append(c.Put, Record{ID: e.ID, TTL: e.TTL, RenewIndex: index})
			if renewed != nil {
				renewed[e.ID] = index
			}
		case ttl < 0:
			if renewed == nil {
				renewed, removed = make(map[int64]uint64, len(c.Put)), map[int64]bool{}
				for _, r := range c.Put {
					renewed[r.ID] = r.RenewIndex
				}
			}
			cur, ok := renewed[e.ID]
			if !ok {
				cur = e.RenewIndex
			}
			if cur == uint64(-ttl) {
				c.Remove = append(c.Remove, e.ID)
				c.DeleteKeys = append(c.DeleteKeys, sortedKeys(e.keys)...)
				removed[e.ID] = true
			}
		}
	}
	if len(c.DeleteKeys) > 1 {
		sort.Slice(c.DeleteKeys, func(i, j int) bool { return bytes.Compare(c.DeleteKeys[i], c.DeleteKeys[j]) < 0 })
	}
	if len(missing) > 0 {
		return c, &MissingError{IDs: missing}
	}
	return c, nil
}

// Commit applies c to memory once its batch is committed: each put record
// (re)starts its lease's local expiry at now + TTL; removed leases are
// forgotten together with their attached keys.
func (l *Lessor) Commit(c Change) {
	now := l.clock()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range c.Put {
		e := l.leases[r.ID]
		if e == nil {
			e = &entry{keys: map[string]struct{}{}}
			l.leases[r.ID] = e
			e.Record = r
			e.setExpiry(now)
			heap.Push(&l.queue, e)
			l.stats.granted.Add(1)
			continue
		}
		e.Record = r
		e.setExpiry(now)
		heap.Fix(&l.queue, e.index)
		l.stats.renewed.Add(1)
	}
	for _, id := range c.Remove {
		e := l.leases[id]
		if e == nil {
			continue
		}
		for k := range e.keys {
			delete(l.items, k)
		}
		delete(l.leases, id)
		heap.Remove(&l.queue, e.index)
		l.stats.revoked.Add(1)
	}
}

// Stats are counts of lease changes this member applied since it started.
type Stats struct {
	// Granted, Renewed and Revoked count grants, renewals and removals
	// (explicit revocations and expiries).
	Granted, Renewed, Revoked uint64
}

// Stats returns the counts of lease changes applied since New.
func (l *Lessor) Stats() Stats {
	return Stats{Granted: l.stats.granted.Load(), Renewed: l.stats.renewed.Load(), Revoked: l.stats.revoked.Load()}
}

// setExpiry starts the lease's full TTL at now.
func (e *entry) setExpiry(now time.Time) {
	e.expiry = now.Add(time.Duration(e.TTL) * time.Second)
	e.checkAt = e.expiry
}

// ApplyEvents keeps the attached keys in step with the events of one applied
// entry: a put attaches its key to its lease (detaching it from any other),
// a put without a lease and a delete detach it.
func (l *Lessor) ApplyEvents(evs []*mvccpb.Event) {
	if len(evs) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ev := range evs {
		key := string(ev.GetKv().GetKey())
		id := int64(0)
		if ev.GetType() == mvccpb.Event_PUT {
			id = ev.GetKv().GetLease()
		}
		l.attachLocked(key, id)
	}
}

// attachLocked attaches key to lease id (0: to none).
func (l *Lessor) attachLocked(key string, id int64) {
	if old, ok := l.items[key]; ok {
		if old == id {
			return
		}
		if e := l.leases[old]; e != nil {
			delete(e.keys, key)
		}
		delete(l.items, key)
	}
	if e := l.leases[id]; id != 0 && e != nil {
		e.keys[key] = struct{}{}
		l.items[key] = id
	}
}

// Load replaces the whole state with recs and the attachments scan reports
// (it calls fn for every live key that names a lease; keys naming a lease
// not in recs are ignored). A lease this Lessor already holds with the same
// TTL and RenewIndex keeps its local expiry; every other lease starts its
// full TTL now. Used at open and after a snapshot restore.
func (l *Lessor) Load(recs []Record, scan func(fn func(key []byte, id int64) error) error) error {
	now := l.clock()
	leases := make(map[int64]*entry, len(recs))
	l.mu.RLock()
	for _, r := range recs {
		e := &entry{Record: r, keys: map[string]struct{}{}}
		if old := l.leases[r.ID]; old != nil && old.Record == r {
			e.expiry, e.checkAt = old.expiry, old.checkAt
		} else {
			e.setExpiry(now)
		}
		leases[r.ID] = e
	}
	l.mu.RUnlock()
	items := map[string]int64{}
	if scan != nil {
		err := scan(func(key []byte, id int64) error {
			if e := leases[id]; e != nil {
				e.keys[string(key)] = struct{}{}
				items[string(key)] = id
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	queue := make(expiryQueue, 0, len(leases))
	for _, e := range leases {
		e.index = len(queue)
		queue = append(queue, e)
	}
	heap.Init(&queue)
	l.mu.Lock()
	l.leases, l.items, l.queue = leases, items, queue
	l.mu.Unlock()
	return nil
}

func sortedKeys(set map[string]struct{}) [][]byte {
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = []byte(k)
	}
	return out
}

// expiryQueue is a min-heap of leases by checkAt.
type expiryQueue []*entry

// Len is the number of queued leases (heap.Interface).
func (q expiryQueue) Len() int { return len(q) }

// Less orders by checkAt, then ID (heap.Interface).
func (q expiryQueue) Less(i, j int) bool {
	if q[i].checkAt.Equal(q[j].checkAt) {
		return q[i].ID < q[j].ID
	}
	return q[i].checkAt.Before(q[j].checkAt)
}

// Swap swaps two leases and their positions (heap.Interface).
func (q expiryQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}

// Push adds x (heap.Interface).
func (q *expiryQueue) Push(x any) {
	e := x.(*entry)
	e.index = len(*q)
	*q = append(*q, e)
}

// Pop removes the last element (heap.Interface).
func (q *expiryQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	e.index = -1
	return e
}

// MinTTL is the smallest TTL, in seconds, a member grants, computed as etcd
// computes it: 1.5 election timeouts (in whole ticks), rounded up to a
// second, so that a lease survives a leader election.
func MinTTL(heartbeat time.Duration, electionTicks int) int64 {
	d := time.Duration((3*electionTicks)/2) * heartbeat
	s := int64(d / time.Second)
	if d%time.Second != 0 {
		s++
	}
	return s
}

// ExpiryRequest is the raft request a leader proposes to expire lease e:
// a LeaseCheckpoint whose negative remaining TTL carries the renewal index
// the expiry is conditional on (PlanCheckpoints revokes the lease only if
// it was not renewed since). The server's expiry duty and the simulation
// propose exactly this.
func ExpiryRequest(e Expiry) *pb.InternalRaftRequest {
	return &pb.InternalRaftRequest{LeaseCheckpoint: &pb.LeaseCheckpointRequest{
		Checkpoints: []*pb.LeaseCheckpoint{{ID: e.ID, Remaining_TTL: -int64(e.RenewIndex)}},
	}}
}
