package checkrunner

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/synod-db/synod/healthcheck"
)

// Store is the catalog's write path the runner uses (consulapi.Server's
// node-update path).
type Store interface {
	SetCheckStatus(ctx context.Context, node, checkID, status, output string) error
	DeregisterService(ctx context.Context, node, serviceID string) error
}

// writer writes statuses and deregistrations one at a time, off the
// runner's loop; pending writes of one check coalesce (the latest wins),
// so its queue is bounded by the number of checks.
type writer struct {
	store   Store
	timeout time.Duration
	log     *slog.Logger

	mu      sync.Mutex
	updates map[healthcheck.Key]healthcheck.Result
	reaps   map[healthcheck.ServiceRef]bool
	failed  []healthcheck.Key
	kick    chan struct{} // wakes the writer
	done    func()        // wakes the runner's loop after a failure
}

func newWriter(store Store, timeout time.Duration, log *slog.Logger, done func()) *writer {
	return &writer{store: store, timeout: timeout, log: log, updates: map[healthcheck.Key]healthcheck.Result{},
		reaps: map[healthcheck.ServiceRef]bool{}, kick: make(chan struct{}, 1), done: done}
}

func (w *writer) put(u healthcheck.Update) {
	w.mu.Lock()
	w.updates[u.Key] = u.Result
	w.mu.Unlock()
	w.wake()
}

func (w *writer) reap(ref healthcheck.ServiceRef) {
	w.mu.Lock()
	w.reaps[ref] = true
	w.mu.Unlock()
	w.wake()
}

func (w *writer) wake() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// takeFailed returns the checks whose writes failed since the last call.
func (w *writer) takeFailed() []healthcheck.Key {
	w.mu.Lock()
	defer w.mu.Unlock()
	f := w.failed
	w.failed = nil
	return f
}

// run writes until ctx ends.
func (w *writer) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		}
		for w.writeOne(ctx) {
		}
	}
}

// writeOne makes one pending write (a deregistration first); it reports
// false when none was pending.
func (w *writer) writeOne(ctx context.Context) bool {
	w.mu.Lock()
	var ref *healthcheck.ServiceRef
	var up *healthcheck.Update
	if r, ok := first(w.reaps, func(a, b healthcheck.ServiceRef) bool { return a.Node+"\x00"+a.ServiceID < b.Node+"\x00"+b.ServiceID }); ok {
		delete(w.reaps, r)
		ref = &r
	} else if k, ok := first(w.updates, func(a, b healthcheck.Key) bool { return a.Node+"\x00"+a.CheckID < b.Node+"\x00"+b.CheckID }); ok {
		up = &healthcheck.Update{Key: k, Result: w.updates[k]}
		delete(w.updates, k)
	}
	w.mu.Unlock()
	if ref == nil && up == nil {
		return false
	}
	wctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	if ref != nil {
		w.log.Info("deregistering a service whose check stayed critical", "node", ref.Node, "service", ref.ServiceID)
		if err := w.store.DeregisterService(wctx, ref.Node, ref.ServiceID); err != nil {
			w.log.Warn("deregistering a critical service failed", "node", ref.Node, "service", ref.ServiceID, "err", err)
		}
		return true
	}
	if err := w.store.SetCheckStatus(wctx, up.Node, up.CheckID, up.Status, up.Output); err != nil {
		w.log.Warn("writing a check's status failed", "node", up.Node, "check", up.CheckID, "err", err)
		w.mu.Lock()
		w.failed = append(w.failed, up.Key)
		w.mu.Unlock()
		w.done()
	}
	return true
}

// first is the least key of m, so writes are made in a stable order.
func first[K comparable, V any](m map[K]V, less func(a, b K) bool) (K, bool) {
	var best K
	found := false
	for k := range m {
		if !found || less(k, best) {
			best, found = k, true
		}
	}
	return best, found
}
