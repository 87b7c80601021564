package faultproxy

import (
	"io"
	"net"
	"time"
)

const (
	// segmentSize is the most bytes read (and so faulted) at once.
	segmentSize = 32 << 10
	// queuedSegments bounds the segments read ahead of delivery per
	// direction; when it is full the proxy stops reading, so the sender
	// feels back-pressure as it would from a slow link.
	queuedSegments = 64
	// minPiece is the smallest write when bandwidth is limited.
	minPiece = 512
)

// conn is one proxied connection: in was accepted, out was dialed. Its
// fields other than p and done are guarded by p.mu.
type conn struct {
	p      *Proxy
	in     net.Conn
	out    net.Conn
	held   bool // a blackhole stopped this connection
	closed bool
	done   chan struct{} // closed when the connection is closed
}

// closeLocked closes both ends once. p.mu must be held.
func (c *conn) closeLocked() {
	if c.closed {
		return
	}
	c.closed = true
	close(c.done)
	c.in.Close()
	if c.out != nil {
		c.out.Close()
	}
}

func (c *conn) close() {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	c.closeLocked()
}

func (c *conn) run() {
	defer c.p.wg.Done()
	defer c.p.remove(c)
	if c.p.holdIfBlackholed(c) {
		<-c.done // a heal or Close closes it
		return
	}
	out, err := c.p.dial()
	if err != nil {
		return
	}
	c.p.mu.Lock()
	if c.closed {
		c.p.mu.Unlock()
		out.Close()
		return
	}
	c.out = out
	c.p.mu.Unlock()
	finished := make(chan struct{}, 2)
	go func() { c.pump(c.in, out); finished <- struct{}{} }()
	go func() { c.pump(out, c.in); finished <- struct{}{} }()
	<-finished
	c.close()
	<-finished
}

// segment is a chunk of the stream and its fate.
type segment struct {
	data []byte
	due  time.Time
	hold bool // read during a blackhole: never delivered
	drop bool
}

// pump copies src to dst through the fault model until either fails or the
// connection is closed; then it closes the connection.
func (c *conn) pump(src io.Reader, dst io.Writer) {
	defer c.close()
	queue := make(chan segment, queuedSegments)
	go c.read(src, queue)
	var nextFree time.Time // bandwidth pacing: when the link is free again
	for seg := range queue {
		if !c.wait(seg.due) {
			return
		}
		if seg.hold {
			<-c.done // a heal or Close closes it
			return
		}
		if seg.drop {
			c.p.count(0, true)
			return
		}
		if !c.write(dst, seg.data, &nextFree) {
			return
		}
	}
}

// read turns src into segments stamped with their delivery time.
func (c *conn) read(src io.Reader, queue chan<- segment) {
	defer close(queue)
	var last time.Time
	for {
		buf := make([]byte, segmentSize)
		n, err := src.Read(buf)
		if n > 0 {
			hold, delay, drop := c.p.segmentFate(c)
			due := time.Now().Add(delay)
			if due.Before(last) {
				due = last
			}
			last = due
			select {
			case queue <- segment{data: buf[:n], due: due, hold: hold, drop: drop}:
			case <-c.done:
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// wait sleeps until t; it returns false if the connection closed first.
func (c *conn) wait(t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		select {
		case <-c.done:
			return false
		default:
			return true
		}
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-c.done:
		return false
	}
}

// write sends data to dst, pacing it to the current bandwidth limit.
func (c *conn) write(dst io.Writer, data []byte, nextFree *time.Time) bool {
	for len(data) > 0 {
		piece := data
		bps := c.p.Faults().BytesPerSecond
		if bps > 0 {
			limit := max(int(bps/20), minPiece)
			if len(piece) > limit {
				piece = piece[:limit]
			}
			if !c.wait(*nextFree) {
				return false
			}
			start := time.Now()
			if nextFree.After(start) {
				start = *nextFree
			}
			*nextFree = start.Add(time.Duration(int64(len(piece)) * int64(time.Second) / bps))
		}
		n, err := dst.Write(piece)
		c.p.count(n, false)
		if err != nil {
			return false
		}
		data = data[len(piece):]
	}
	return true
}
