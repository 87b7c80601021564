package server

import (
	"errors"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// usageFS reports a fixed free space per directory; other directories fail.
type usageFS struct {
	vfs.FS
	free map[string]uint64
}

func (fs usageFS) GetDiskUsage(path string) (vfs.DiskUsage, error) {
	if f, ok := fs.free[path]; ok {
		return vfs.DiskUsage{AvailBytes: f}, nil
	}
	return vfs.DiskUsage{}, errors.New("no such filesystem")
}

// The free space checked is the least of the data and WAL directories';
// a write passes while it leaves the reserve free, a write of nothing always
// does, and a disk whose usage cannot be read does not block writes.
func TestDiskReserve(t *testing.T) {
	const r = DiskReserveBytes
	for _, tc := range []struct {
		name      string
		data, wal uint64 // free bytes; 0: unreadable
		cost      int
		want      bool
	}{
		{"roomy", 10 * r, 0, 100, true},
		{"exactly the reserve left", r + 100, 0, 100, true},
		{"under the reserve", r + 99, 0, 100, false},
		{"the WAL disk is the low one", 10 * r, r, 1, false},
		{"a low disk still takes what adds nothing", r / 2, 0, 0, true},
		{"unreadable", 0, 0, 100, true},
	} {
		fs := usageFS{vfs.NewMem(), map[string]uint64{}}
		m := &Member{cfg: Config{DataDir: "data", FS: fs}}
		if tc.data > 0 {
			fs.free["data"] = tc.data
		}
		if tc.wal > 0 {
			m.cfg.WALDir = "wal"
			fs.free["wal"] = tc.wal
		}
		m.sampleDiskFree()
		if got := m.diskAvailable(tc.cost); got != tc.want {
			t.Errorf("%s: diskAvailable(%d) with %d free = %v, want %v", tc.name, tc.cost, m.diskFree.Load(), got, tc.want)
		}
	}
}
