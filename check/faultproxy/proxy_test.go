package faultproxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// target is an echo server that records, per accepted connection, how many
// bytes it received before the connection ended.
type target struct {
	ln       net.Listener
	mu       sync.Mutex
	accepted int
	ended    chan int // bytes received by each connection, when it ends
}

func newTarget(t *testing.T) *target {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tg := &target{ln: ln, ended: make(chan int, 16)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tg.mu.Lock()
			tg.accepted++
			tg.mu.Unlock()
			go func() {
				defer c.Close()
				n, _ := io.Copy(c, c)
				tg.ended <- int(n)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return tg
}

func (tg *target) acceptedCount() int {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return tg.accepted
}

func newProxy(t *testing.T, tg *target) *Proxy {
	t.Helper()
	p, err := Listen("tcp", "127.0.0.1:0", "tcp", tg.ln.Addr().String(), 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// echo writes msg and reads it back within a deadline.
func echo(c net.Conn, msg []byte) error {
	if err := c.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		return err
	}
	if _, err := c.Write(msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return errors.New("echo mismatch")
	}
	return nil
}

// waitEnded waits for the target to report a connection's end.
func waitEnded(t *testing.T, tg *target) int {
	t.Helper()
	select {
	case n := <-tg.ended:
		return n
	case <-time.After(20 * time.Second):
		t.Fatal("target connection did not end")
		return 0
	}
}

// waitClosed waits until c reads EOF or an error other than a timeout.
func waitClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 1)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("connection was not closed")
		}
		return
	}
}

// waitHolding waits until the proxy holds n connections in a blackhole.
func waitHolding(t *testing.T, p *Proxy, n int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for p.Stats().Holding != n {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v: want %d held connections", p.Stats(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestForwardsUnchanged(t *testing.T) {
	tg := newTarget(t)
	p := newProxy(t, tg)
	c := dial(t, p)
	msg := bytes.Repeat([]byte("synod"), 100_000) // several segments
	if err := echo(c, msg); err != nil {
		t.Fatal(err)
	}
	// The proxy counts a chunk once its write returned, which can be just
	// after the client has read it: wait (bounded) for the count.
	deadline := time.Now().Add(5 * time.Second)
	for p.Stats().Forwarded != 2*int64(len(msg)) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := p.Stats().Forwarded; got != 2*int64(len(msg)) {
		t.Fatalf("forwarded %d bytes, want %d", got, 2*len(msg))
	}
}

func TestBlackholeHoldsThenCutsExistingConnection(t *testing.T) {
	tg := newTarget(t)
	p := newProxy(t, tg)
	c := dial(t, p)
	if err := echo(c, []byte("before")); err != nil {
		t.Fatal(err)
	}
	if err := p.Set(Faults{Blackhole: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("during the partition")); err != nil {
		t.Fatal(err)
	}
	waitHolding(t, p, 1)
	p.Heal()
	waitClosed(t, c)
	// The target saw only the bytes sent before the blackhole.
	if n := waitEnded(t, tg); n != len("before") {
		t.Fatalf("target received %d bytes, want %d", n, len("before"))
	}
	if p.Stats().Held != 1 {
		t.Fatalf("stats %+v: want one held connection", p.Stats())
	}
	// After the heal, new connections flow.
	if err := echo(dial(t, p), []byte("after")); err != nil {
		t.Fatal(err)
	}
}

func TestBlackholeNeverDialsNewConnections(t *testing.T) {
	tg := newTarget(t)
	p := newProxy(t, tg)
	if err := p.Set(Faults{Blackhole: true}); err != nil {
		t.Fatal(err)
	}
	c := dial(t, p)
	if _, err := c.Write([]byte("hello?")); err != nil {
		t.Fatal(err)
	}
	waitHolding(t, p, 1)
	p.Heal()
	waitClosed(t, c)
	if n := tg.acceptedCount(); n != 0 {
		t.Fatalf("target accepted %d connections during the blackhole, want 0", n)
	}
}

func TestDropAllCutsConnection(t *testing.T) {
	tg := newTarget(t)
	p := newProxy(t, tg)
	if err := p.Set(Faults{DropRate: 1}); err != nil {
		t.Fatal(err)
	}
	c := dial(t, p)
	if _, err := c.Write([]byte("lost")); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, c)
	if n := waitEnded(t, tg); n != 0 {
		t.Fatalf("target received %d bytes, want 0", n)
	}
	if s := p.Stats(); s.Dropped != 1 || s.Forwarded != 0 {
		t.Fatalf("stats %+v: want 1 dropped, 0 forwarded", s)
	}
}

func TestDropRateIsAProbability(t *testing.T) {
	tg := newTarget(t)
	p := newProxy(t, tg)
	if err := p.Set(Faults{DropRate: 0.5}); err != nil {
		t.Fatal(err)
	}
	cut, ok := 0, 0
	for i := 0; i < 40; i++ {
		c := dial(t, p)
		if err := echo(c, []byte("x")); err != nil {
			cut++
		} else {
			ok++
		}
		c.Close()
	}
	if cut == 0 || ok == 0 {
		t.Fatalf("drop rate 0.5: %d cut, %d survived; want some of each", cut, ok)
	}
}

func TestDelayIsALowerBoundAndKeepsOrder(t *testing.T) {
	tg := newTarget(t)
	p := newProxy(t, tg)
	const delay = 150 * time.Millisecond
	if err := p.Set(Faults{Delay: delay, Jitter: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	c := dial(t, p)
	start := time.Now()
	if err := echo(c, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	// Two proxied hops (there and back), each delayed at least delay.
	if rtt := time.Since(start); rtt < 2*delay {
		t.Fatalf("round trip %v, want at least %v", rtt, 2*delay)
	}
	// Many small writes, each its own segment with its own jitter, arrive
	// in order.
	var want bytes.Buffer
	go func() {
		for i := 0; i < 200; i++ {
			fmt.Fprintf(c, "%04d", i)
		}
	}()
	for i := 0; i < 200; i++ {
		fmt.Fprintf(&want, "%04d", i)
	}
	got := make([]byte, want.Len())
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatal("delayed segments were reordered")
	}
}

func TestBandwidthLimit(t *testing.T) {
	tg := newTarget(t)
	p := newProxy(t, tg)
	const bps = 64 << 10
	if err := p.Set(Faults{BytesPerSecond: bps}); err != nil {
		t.Fatal(err)
	}
	c := dial(t, p)
	msg := bytes.Repeat([]byte{7}, 32<<10)
	start := time.Now()
	if err := echo(c, msg); err != nil {
		t.Fatal(err)
	}
	// The echo streams, so the two directions overlap: at least len/bps,
	// less the first piece that goes out at once.
	min := time.Duration(len(msg)-bps/20) * time.Second / bps
	if el := time.Since(start); el < min {
		t.Fatalf("32 KiB each way at 64 KiB/s took %v, want at least %v", el, min)
	}
}

func TestInvalidFaultsRejected(t *testing.T) {
	tg := newTarget(t)
	p := newProxy(t, tg)
	for _, f := range []Faults{{Delay: -1}, {DropRate: 1.5}, {DropRate: -0.1}, {BytesPerSecond: -1}} {
		if err := p.Set(f); err == nil {
			t.Errorf("Set(%+v): want an error", f)
		}
	}
	if p.Faults() != (Faults{}) {
		t.Fatalf("faults changed to %+v by invalid Set", p.Faults())
	}
}

func TestCloseEndsEverything(t *testing.T) {
	tg := newTarget(t)
	p := newProxy(t, tg)
	c := dial(t, p)
	if err := echo(c, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := p.Set(Faults{Blackhole: true}); err != nil {
		t.Fatal(err)
	}
	held := dial(t, p)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, c)
	waitClosed(t, held)
	if _, err := net.Dial("tcp", p.Addr().String()); err == nil {
		t.Fatal("proxy still accepts after Close")
	}
}

func TestFaultsString(t *testing.T) {
	for f, want := range map[Faults]string{
		{}:                        "healthy",
		{Blackhole: true}:         "blackhole",
		{DropRate: 0.25}:          "drop=25%",
		{Delay: time.Millisecond}: "delay=1ms±0s",
	} {
		if got := f.String(); got != want {
			t.Errorf("%+v: %q, want %q", f, got, want)
		}
	}
}
