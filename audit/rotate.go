package audit

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
)

// rotatingFile appends lines to a file and, once a line would take it past
// max bytes, renames it to PATH.1 (shifting PATH.1 to PATH.2 and so on,
// removing the oldest beyond backups) and starts a new PATH. A line is
// never split across files. Only the writer goroutine uses it.
type rotatingFile struct {
	path    string
	max     int64 // 0: never rotate
	backups int
	f       *os.File
	w       *bufio.Writer
	size    int64
}

// openRotating opens path for appending (0600, created if missing).
func openRotating(path string, max int64, backups int) (*rotatingFile, error) {
	r := &rotatingFile{path: path, max: max, backups: backups}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *rotatingFile) open() error {
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit: open log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("audit: open log: %w", err)
	}
	r.f, r.w, r.size = f, bufio.NewWriterSize(f, 64<<10), st.Size()
	return nil
}

// WriteLine appends p, rotating first if p would not fit.
func (r *rotatingFile) WriteLine(p []byte) error {
	if r.f == nil { // a rotation failed to reopen: try again
		if err := r.open(); err != nil {
			return err
		}
	}
	if r.max > 0 && r.size > 0 && r.size+int64(len(p)) > r.max {
		if err := r.rotate(); err != nil {
			return err
		}
	}
	n, err := r.w.Write(p)
	r.size += int64(n)
	return err
}

// rotate closes the current file, shifts the backups and opens a new file.
func (r *rotatingFile) rotate() error {
	if err := r.Close(); err != nil {
		return err
	}
	name := func(i int) string { return r.path + "." + strconv.Itoa(i) }
	if r.backups == 0 {
		if err := os.Remove(r.path); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("audit: rotate: %w", err)
		}
		return r.open()
	}
	if err := os.Remove(name(r.backups)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("audit: rotate: %w", err)
	}
	for i := r.backups - 1; i >= 1; i-- {
		if err := os.Rename(name(i), name(i+1)); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("audit: rotate: %w", err)
		}
	}
	if err := os.Rename(r.path, name(1)); err != nil {
		return fmt.Errorf("audit: rotate: %w", err)
	}
	return r.open()
}

// Flush writes buffered lines to the file (no fsync).
func (r *rotatingFile) Flush() error {
	if r.f == nil {
		return nil
	}
	return r.w.Flush()
}

// Close flushes and closes the current file.
func (r *rotatingFile) Close() error {
	if r.f == nil {
		return nil
	}
	err := r.w.Flush()
	if cerr := r.f.Close(); err == nil {
		err = cerr
	}
	r.f = nil
	return err
}
