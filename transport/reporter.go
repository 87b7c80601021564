package transport

import "sync"

// Report kinds, a bit set per peer.
const (
	reportUnreachable uint8 = 1 << iota
	reportSnapFailed
)

// reporter delivers ReportUnreachable (and failed-snapshot reports raised by
// Send) to a Handler from its own goroutine, so that Send never calls the
// Handler on the caller's goroutine. Reports for one peer are coalesced until
// delivered. The delivering goroutine exists only while reports are pending.
// Safe for concurrent use.
type reporter struct {
	h Handler

	mu      sync.Mutex
	pending map[uint64]uint8
	order   []uint64 // peers in pending, in first-report order (determinism)
	running bool
	closed  bool
	wg      sync.WaitGroup
}

func newReporter(h Handler) *reporter {
	return &reporter{h: h, pending: make(map[uint64]uint8)}
}

// unreachable schedules h.ReportUnreachable(id).
func (r *reporter) unreachable(id uint64) { r.add(id, reportUnreachable) }

// snapshotFailed schedules h.ReportSnapshot(id, true).
func (r *reporter) snapshotFailed(id uint64) { r.add(id, reportSnapFailed) }

func (r *reporter) add(id uint64, kind uint8) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	old, ok := r.pending[id]
	if !ok {
		r.order = append(r.order, id)
	}
	r.pending[id] = old | kind
	if !r.running {
		r.running = true
		r.wg.Add(1)
		go r.run()
	}
}

func (r *reporter) run() {
	defer r.wg.Done()
	var order []uint64
	for {
		r.mu.Lock()
		if len(r.order) == 0 || r.closed {
			r.running = false
			r.mu.Unlock()
			return
		}
		order, r.order = r.order, order[:0]
		kinds := make([]uint8, len(order))
		for i, id := range order {
			kinds[i] = r.pending[id]
			delete(r.pending, id)
		}
		r.mu.Unlock()
		r.deliver(order, kinds)
	}
}

func (r *reporter) deliver(ids []uint64, kinds []uint8) {
	for i, id := range ids {
		if kinds[i]&reportUnreachable != 0 {
			r.h.ReportUnreachable(id)
		}
		if kinds[i]&reportSnapFailed != 0 {
			r.h.ReportSnapshot(id, true)
		}
	}
}

// close discards pending reports and waits for a delivery in progress.
func (r *reporter) close() {
	r.mu.Lock()
	r.closed = true
	r.pending = nil
	r.order = nil
	r.mu.Unlock()
	r.wg.Wait()
}
