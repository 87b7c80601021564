package simulation

import "container/heap"

// Time is simulated time in milliseconds since the start of a run.
type Time int64

// scheduler is a discrete-event scheduler: a fake clock and a queue of
// events ordered by (time, insertion order). It is single-threaded, so a run
// is a pure function of its seed.
type scheduler struct {
	now   Time
	seq   uint64
	queue eventQueue
}

// event is one scheduled action.
type event struct {
	at  Time
	seq uint64
	fn  func()
}

// after schedules fn to run d milliseconds from now (d < 0 counts as 0).
func (s *scheduler) after(d Time, fn func()) {
	if d < 0 {
		d = 0
	}
	s.seq++
	heap.Push(&s.queue, &event{at: s.now + d, seq: s.seq, fn: fn})
}

// step runs the next event unless it is later than until; it reports
// whether it ran one.
func (s *scheduler) step(until Time) bool {
	if len(s.queue) == 0 || s.queue[0].at > until {
		return false
	}
	ev := heap.Pop(&s.queue).(*event)
	s.now = ev.at
	ev.fn()
	return true
}

// runUntil runs every event due at or before t, then sets the clock to t.
func (s *scheduler) runUntil(t Time) {
	for s.step(t) {
	}
	if s.now < t {
		s.now = t
	}
}

// eventQueue is a min-heap of events by (at, seq).
type eventQueue []*event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *eventQueue) Pop() any {
	old := *q
	ev := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return ev
}
