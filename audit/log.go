package audit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultBuffer is the default capacity of a Log's queue, in entries.
const DefaultBuffer = 8192

// Config configures a Log.
type Config struct {
	// Path is the file to append to; "-" writes to standard output.
	// Ignored when Output is set.
	Path string
	// Output, if set, receives the lines instead of Path (tests; no
	// rotation).
	Output io.Writer
	// MaxSizeMB rotates the file once it would grow past this many MiB;
	// 0 never rotates.
	MaxSizeMB int
	// MaxBackups is how many rotated files (PATH.1 newest ... PATH.N
	// oldest) are kept; older ones are removed. 0 keeps none.
	MaxBackups int
	// Buffer is the queue's capacity in entries; 0 means DefaultBuffer.
	Buffer int
	// Identity names the caller of a request: the authenticated user, or
	// the verified client certificate's common name. nil means
	// CertIdentity.
	Identity func(ctx context.Context) string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnError is told about a failed write or rotation (the entries are
	// counted as dropped); nil ignores it.
	OnError func(error)
}

// Log is an audit log. Record never blocks: entries go through a bounded
// queue to one writer goroutine. When the queue is full the entry is
// dropped and counted, and the next entry that finds room is preceded by
// one line saying how many were dropped, at the place they were lost.
// Safe for concurrent use.
type Log struct {
	cfg     Config
	mu      sync.Mutex // guards pending, closed and sends on queue
	queue   chan Entry
	pending uint64 // dropped since the last "dropped" line was queued
	closed  bool
	dropped atomic.Uint64 // all dropped entries, for the metric
	written atomic.Uint64
	out     lineWriter
	done    chan struct{}
}

// lineWriter is where lines go: a plain writer or a rotating file.
type lineWriter interface {
	WriteLine(p []byte) error
	Flush() error
	Close() error
}

// Open starts a Log as cfg says. Close it to flush and stop its writer.
func Open(cfg Config) (*Log, error) {
	if cfg.Buffer <= 0 {
		cfg.Buffer = DefaultBuffer
	}
	if cfg.Identity == nil {
		cfg.Identity = CertIdentity
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxSizeMB < 0 || cfg.MaxBackups < 0 {
		return nil, errors.New("audit: max size and max backups must not be negative")
	}
	var out lineWriter
	switch {
	case cfg.Output != nil:
		out = &plainWriter{w: bufio.NewWriter(cfg.Output)}
	case cfg.Path == "-":
		out = &plainWriter{w: bufio.NewWriter(os.Stdout)}
	case cfg.Path == "":
		return nil, errors.New("audit: no path")
	default:
		f, err := openRotating(cfg.Path, int64(cfg.MaxSizeMB)<<20, cfg.MaxBackups)
		if err != nil {
			return nil, err
		}
		out = f
	}
	l := &Log{cfg: cfg, queue: make(chan Entry, cfg.Buffer), out: out, done: make(chan struct{})}
	go l.write()
	return l, nil
}

// Identity names the caller of the request ctx belongs to (Config.Identity).
func (l *Log) Identity(ctx context.Context) string { return l.cfg.Identity(ctx) }

// Now is the Log's clock.
func (l *Log) Now() time.Time { return l.cfg.Now() }

// Record queues e without blocking; if the queue is full, e is dropped and
// counted. Entries recorded after Close are dropped silently.
func (l *Log) Record(e Entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	if l.pending > 0 {
		select {
		case l.queue <- Entry{Time: l.cfg.Now(), Dropped: l.pending}:
			l.pending = 0
		default:
			l.drop()
			return
		}
	}
	select {
	case l.queue <- e:
	default:
		l.drop()
	}
}

// drop counts one lost entry; l.mu is held.
func (l *Log) drop() {
	l.pending++
	l.dropped.Add(1)
}

// Dropped is the number of entries lost so far (queue full or write
// failed); it never decreases.
func (l *Log) Dropped() uint64 { return l.dropped.Load() }

// Written is the number of lines written so far, "dropped" lines included.
func (l *Log) Written() uint64 { return l.written.Load() }

// Close writes what is queued (and a last "dropped" line if entries were
// lost since the previous one), flushes and closes the output.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		<-l.done
		return nil
	}
	l.closed = true
	if l.pending > 0 {
		// The writer drains the queue; this last line waits for room.
		n := l.pending
		l.pending = 0
		l.mu.Unlock()
		l.queue <- Entry{Time: l.cfg.Now(), Dropped: n}
		l.mu.Lock()
	}
	close(l.queue)
	l.mu.Unlock()
	<-l.done
	return l.out.Close()
}

// write is the writer goroutine: it writes each entry as one line and
// flushes whenever the queue runs empty.
func (l *Log) write() {
	defer close(l.done)
	var buf []byte
	for e := range l.queue {
		buf = e.AppendJSON(buf[:0])
		if err := l.out.WriteLine(buf); err != nil {
			l.failed(err)
			continue
		}
		l.written.Add(1)
		if len(l.queue) == 0 {
			if err := l.out.Flush(); err != nil {
				l.failed(err)
			}
		}
	}
	if err := l.out.Flush(); err != nil {
		l.failed(err)
	}
}

// failed reports a write error; the entry it lost counts as dropped (and
// is reported by the next "dropped" line).
func (l *Log) failed(err error) {
	l.mu.Lock()
	l.drop()
	l.mu.Unlock()
	if l.cfg.OnError != nil {
		l.cfg.OnError(fmt.Errorf("audit: %w", err))
	}
}

// plainWriter writes lines to a buffered writer.
type plainWriter struct{ w *bufio.Writer }

func (p *plainWriter) WriteLine(b []byte) error { _, err := p.w.Write(b); return err }
func (p *plainWriter) Flush() error             { return p.w.Flush() }
func (p *plainWriter) Close() error             { return p.w.Flush() }
