package mvcc

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/synod-db/synod/record"
)

// faultFS fails (errorfs) or flips one bit in (flipFS) every read of an
// sstable while its mode says so.
type faultFS struct {
	vfs.FS
	mode *atomic.Int32 // 0 healthy, 1 read error, 2 flipped bit
}

const (
	faultNone = iota
	faultReadError
	faultFlipBit
)

func newFaultFS() faultFS {
	mode := new(atomic.Int32)
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if mode.Load() == faultReadError && op.Kind.ReadOrWrite() == errorfs.OpIsRead && strings.HasSuffix(op.Path, ".sst") {
			return errorfs.ErrInjected
		}
		return nil
	})
	return faultFS{errorfs.Wrap(vfs.NewMem(), inj), mode}
}

func (fs faultFS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.Open(name, opts...)
	if err != nil || !strings.HasSuffix(name, ".sst") {
		return f, err
	}
	return flipFile{f, fs.mode}, nil
}

type flipFile struct {
	vfs.File
	mode *atomic.Int32
}

// ReadAt flips a bit in the middle of what it read, in flip mode.
func (f flipFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.File.ReadAt(p, off)
	if f.mode.Load() == faultFlipBit && n > 0 {
		p[n/2] ^= 0x10
	}
	return n, err
}

// A range whose sstable the disk fails to read, or reads with a flipped
// bit, is refused with the error (the I/O error itself, or record.ErrCorrupt
// for damage Pebble's block checksum finds) and serves no value. Pebble's
// block cache is off so that every read reaches the file.
func TestRangeReadFaults(t *testing.T) {
	fs := newFaultFS()
	c := pebble.NewCache(0)
	defer c.Unref()
	db, err := pebble.Open("db", &pebble.Options{FS: fs, Logger: quietLogger{}, Cache: c, EventListener: readErrors()})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, fs: fs, db: db}
	h.open()
	defer func() { _ = errors.Join(h.s.Close(), h.db.Close()) }()
	h.put("k", strings.Repeat("v", 100))
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	req := &pb.RangeRequest{Key: []byte("k")}
	for _, tc := range []struct {
		mode int32
		want error
	}{{faultReadError, errorfs.ErrInjected}, {faultFlipBit, record.ErrCorrupt}} {
		fs.mode.Store(tc.mode)
		resp, err := h.s.Range(context.Background(), req)
		fs.mode.Store(faultNone)
		if !errors.Is(err, tc.want) || resp != nil {
			t.Errorf("mode %d: Range = %v, %v; want no response and %v", tc.mode, resp, err, tc.want)
		}
		if _, _, _, err := h.s.HashKV(0); err != nil {
			t.Fatalf("mode %d: the store is unusable after the fault passed: %v", tc.mode, err)
		}
	}
	if got := h.get("k"); got == nil || len(got.Value) != 100 {
		t.Fatalf("k after the faults: %v", got)
	}
}
