// Package faultproxy is a user-space fault-injecting stream proxy: it accepts
// connections on one address, forwards each to a target address, and can
// blackhole, delay (with jitter), drop and throttle the bytes it forwards.
// It stands in for kernel netem, which needs privileges the checker does not
// have.
//
// A Proxy models one direction of one network link: `synod check` puts one
// in front of every ordered pair of members (i dials j), so a fault set on
// the i→j proxy affects exactly the raft messages i sends to j. Both byte
// directions of a proxied connection (the request stream and the receiver's
// flow-control and acknowledgement frames) are subject to the same faults.
//
// TCP is a reliable stream, so faults are expressed the way a real network
// failure looks to a stream:
//
//   - Blackhole: no byte is forwarded in either direction and new
//     connections are accepted but never answered, as when packets are
//     silently lost. When the blackhole is lifted, the connections it held
//     are closed, losing whatever they carried, and later connections flow.
//   - Drop: each forwarded segment is, with the given probability, lost
//     together with its connection (both ends are closed): a stream cannot
//     lose a segment and stay usable, so loss shows up as the in-flight
//     messages being lost and the sender reconnecting.
//   - Delay and jitter: each segment is delivered no earlier than
//     Delay plus a uniform random part of Jitter after it was read, never
//     before the segment read ahead of it (a stream does not reorder).
//   - Bandwidth: the bytes written per second in each direction are capped.
//
// Randomness comes from a seeded source, so a fault schedule replays; the
// timing of the operating system does not.
package faultproxy

import (
	"errors"
	"fmt"
	"math/rand"
	"net"
	"sync"
	"time"
)

// Faults is what a Proxy currently does to the traffic it forwards. The zero
// value forwards everything unchanged.
type Faults struct {
	// Blackhole stops all forwarding (see the package documentation).
	Blackhole bool
	// Delay is added to every segment; Jitter adds a uniform random extra
	// in [0, Jitter).
	Delay, Jitter time.Duration
	// DropRate in [0, 1] is the probability that a forwarded segment is
	// lost together with its connection.
	DropRate float64
	// BytesPerSecond caps throughput per direction; 0 means unlimited.
	BytesPerSecond int64
}

// String describes f for fault timelines.
func (f Faults) String() string {
	if f == (Faults{}) {
		return "healthy"
	}
	s := ""
	add := func(part string) {
		if s != "" {
			s += " "
		}
		s += part
	}
	if f.Blackhole {
		add("blackhole")
	}
	if f.Delay > 0 || f.Jitter > 0 {
		add(fmt.Sprintf("delay=%v±%v", f.Delay, f.Jitter))
	}
	if f.DropRate > 0 {
		add(fmt.Sprintf("drop=%.0f%%", f.DropRate*100))
	}
	if f.BytesPerSecond > 0 {
		add(fmt.Sprintf("bw=%dB/s", f.BytesPerSecond))
	}
	return s
}

// Validate reports whether f is usable.
func (f Faults) Validate() error {
	switch {
	case f.Delay < 0 || f.Jitter < 0:
		return errors.New("faultproxy: negative delay or jitter")
	case f.DropRate < 0 || f.DropRate > 1:
		return errors.New("faultproxy: drop rate outside [0, 1]")
	case f.BytesPerSecond < 0:
		return errors.New("faultproxy: negative bandwidth")
	}
	return nil
}

// Stats counts what a Proxy has done since it started.
type Stats struct {
	// Accepted is the number of connections accepted.
	Accepted int64
	// Forwarded is the number of bytes written to either side.
	Forwarded int64
	// Dropped is the number of connections cut by DropRate.
	Dropped int64
	// Held is the number of connections closed when a blackhole was lifted.
	Held int64
	// Holding is the number of connections a blackhole holds right now.
	Holding int64
}

// DialFunc opens a connection to the proxy's target.
type DialFunc func() (net.Conn, error)

// Proxy forwards connections accepted on a listener to a target. Create it
// with New or Listen; all methods are safe for concurrent use.
type Proxy struct {
	ln   net.Listener
	dial DialFunc

	mu     sync.Mutex
	faults Faults
	rng    *rand.Rand
	conns  map[*conn]struct{}
	stats  Stats
	closed bool

	wg sync.WaitGroup
}

// Listen listens on network/addr and forwards to targetNetwork/targetAddr.
func Listen(network, addr, targetNetwork, targetAddr string, seed int64) (*Proxy, error) {
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, fmt.Errorf("faultproxy: %w", err)
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	return New(ln, func() (net.Conn, error) { return d.Dial(targetNetwork, targetAddr) }, seed), nil
}

// New serves ln, forwarding every accepted connection to a connection opened
// by dial. The proxy owns ln and closes it on Close.
func New(ln net.Listener, dial DialFunc, seed int64) *Proxy {
	p := &Proxy{
		ln:    ln,
		dial:  dial,
		rng:   rand.New(rand.NewSource(seed)),
		conns: make(map[*conn]struct{}),
	}
	p.wg.Add(1)
	go p.accept()
	return p
}

// Addr is the address the proxy listens on.
func (p *Proxy) Addr() net.Addr { return p.ln.Addr() }

// Set replaces the current faults. Lifting a blackhole closes the
// connections it held. It returns an error, and changes nothing, if f is
// invalid.
func (p *Proxy) Set(f Faults) error {
	if err := f.Validate(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	wasHole := p.faults.Blackhole
	p.faults = f
	if wasHole && !f.Blackhole {
		for c := range p.conns {
			if c.held {
				p.stats.Held++
				c.closeLocked()
			}
		}
	}
	return nil
}

// Heal removes every fault (Set(Faults{})).
func (p *Proxy) Heal() { _ = p.Set(Faults{}) }

// Faults returns the current faults.
func (p *Proxy) Faults() Faults {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.faults
}

// Stats returns the counters so far.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	for c := range p.conns {
		if c.held && !c.closed {
			s.Holding++
		}
	}
	return s
}

// Close stops accepting, closes every proxied connection and waits for the
// proxy's goroutines to finish.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	err := p.ln.Close()
	for c := range p.conns {
		c.closeLocked()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			in.Close()
			return
		}
		p.stats.Accepted++
		c := &conn{p: p, in: in, done: make(chan struct{})}
		p.conns[c] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go c.run()
	}
}

// remove forgets c once both of its pumps have stopped.
func (p *Proxy) remove(c *conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c.closeLocked()
	delete(p.conns, c)
}

// holdIfBlackholed marks c held (the next heal closes it) and reports
// whether there is a blackhole. p.mu must be held.
func (p *Proxy) holdIfBlackholedLocked(c *conn) bool {
	if !p.faults.Blackhole {
		return false
	}
	c.held = true
	return true
}

// holdIfBlackholed is holdIfBlackholedLocked taking the lock.
func (p *Proxy) holdIfBlackholed(c *conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.holdIfBlackholedLocked(c)
}

// segmentFate decides what happens to a segment just read on c: it is held
// (a blackhole: never delivered), delayed, or it cuts the connection.
func (p *Proxy) segmentFate(c *conn) (hold bool, delay time.Duration, drop bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.holdIfBlackholedLocked(c) {
		return true, 0, false
	}
	f := p.faults
	delay = f.Delay
	if f.Jitter > 0 {
		delay += time.Duration(p.rng.Int63n(int64(f.Jitter)))
	}
	drop = f.DropRate > 0 && p.rng.Float64() < f.DropRate
	return false, delay, drop
}

func (p *Proxy) count(forwarded int, dropped bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.Forwarded += int64(forwarded)
	if dropped {
		p.stats.Dropped++
	}
}
