package healthcheck

import (
	"slices"
	"time"
)

// Takeovers remembers since when a runner has run each node it took over,
// so that the node's serfHealth goes critical only once the takeover has
// held for a grace period. A runner key missed for a moment (a cluster
// starting, a member opening a new session) moves a node to another
// runner and back within milliseconds; marking it failed at once would end
// every session on that node, as Consul does only after serf has found the
// agent failed. Not safe for concurrent use.
type Takeovers struct {
	grace time.Duration
	since map[string]time.Time
}

// NewTakeovers returns takeovers settled after grace.
func NewTakeovers(grace time.Duration) *Takeovers {
	return &Takeovers{grace: grace, since: map[string]time.Time{}}
}

// Observe records the nodes self runs at now (as Owned returns them) and
// returns those whose serfHealth it may write: its own node, and each node
// taken over at least grace ago. next is when the next pending takeover
// settles, zero when none is pending. A node handed back and taken over
// again starts its grace anew.
func (t *Takeovers) Observe(self string, owned []string, now time.Time) (settled []string, next time.Time) {
	for n := range t.since {
		if !slices.Contains(owned, n) {
			delete(t.since, n)
		}
	}
	for _, n := range owned {
		if n == self {
			settled = append(settled, n)
			continue
		}
		at, ok := t.since[n]
		if !ok {
			at = now
			t.since[n] = at
		}
		due := at.Add(t.grace)
		if !now.Before(due) {
			settled = append(settled, n)
		} else if next.IsZero() || due.Before(next) {
			next = due
		}
	}
	return settled, next
}
