package raftnode

import (
	"container/heap"
	"sync"

	"google.golang.org/protobuf/proto"
)

// Result is what applying one proposal produced on this member.
type Result struct {
	// Resp is the typed response (for example *etcdserverpb.PutResponse).
	Resp proto.Message
	// Err is a deterministic, request-level error from the state machine.
	Err error
	// Done, when non-nil, closes once background work the request asked
	// for (a physical compaction) has finished.
	Done <-chan struct{}
}

// waiters maps proposal IDs to the channel their caller waits on. Callers
// register and cancel; the raft loop triggers. Safe for concurrent use.
type waiters struct {
	mu sync.Mutex
	m  map[uint64]chan Result
}

func newWaiters() *waiters { return &waiters{m: make(map[uint64]chan Result)} }

func (w *waiters) register(id uint64) <-chan Result {
	ch := make(chan Result, 1)
	w.mu.Lock()
	w.m[id] = ch
	w.mu.Unlock()
	return ch
}

// len is the number of registered waiters.
func (w *waiters) len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.m)
}

func (w *waiters) cancel(id uint64) {
	w.mu.Lock()
	delete(w.m, id)
	w.mu.Unlock()
}

// trigger delivers r to the waiter for id, if it is still waiting.
func (w *waiters) trigger(id uint64, r Result) {
	w.mu.Lock()
	ch, ok := w.m[id]
	delete(w.m, id)
	w.mu.Unlock()
	if ok {
		ch <- r
	}
}

// failAll delivers err to every waiter (shutdown).
func (w *waiters) failAll(err error) {
	w.mu.Lock()
	m := w.m
	w.m = make(map[uint64]chan Result)
	w.mu.Unlock()
	for _, ch := range m {
		ch <- Result{Err: err}
	}
}

// appliedWait lets readers wait until the applied index reaches a value.
// The raft loop calls advance; readers call wait. Safe for concurrent use.
type appliedWait struct {
	mu      sync.Mutex
	applied uint64
	stopped bool
	h       indexHeap
}

type indexWaiter struct {
	index uint64
	ch    chan struct{}
}

type indexHeap []indexWaiter

func (h indexHeap) Len() int           { return len(h) }
func (h indexHeap) Less(i, j int) bool { return h[i].index < h[j].index }
func (h indexHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *indexHeap) Push(x any)        { *h = append(*h, x.(indexWaiter)) }
func (h *indexHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// wait returns a channel closed once applied >= index (or on stop).
func (a *appliedWait) wait(index uint64) <-chan struct{} {
	ch := make(chan struct{})
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.applied >= index || a.stopped {
		close(ch)
		return ch
	}
	heap.Push(&a.h, indexWaiter{index: index, ch: ch})
	return ch
}

func (a *appliedWait) advance(index uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if index > a.applied {
		a.applied = index
	}
	for a.h.Len() > 0 && a.h[0].index <= a.applied {
		close(heap.Pop(&a.h).(indexWaiter).ch)
	}
}

func (a *appliedWait) stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stopped = true
	for a.h.Len() > 0 {
		close(heap.Pop(&a.h).(indexWaiter).ch)
	}
}

func (a *appliedWait) get() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.applied
}
