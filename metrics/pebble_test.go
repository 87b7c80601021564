package metrics

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// scrape returns the value of the series name{labels} from s's handler.
func scrape(t *testing.T, s *Set, name, labels string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name+"{"+labels+"}") + ` (\S+)$`)
	m := re.FindSubmatch(body)
	if m == nil {
		t.Fatalf("%s{%s} not in:\n%s", name, labels, body)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// A real database's flushes, compactions, levels and WAL show under its
// own db label, read at scrape time, and a second database's stay apart.
func TestPebbleFiguresFollowTheDatabase(t *testing.T) {
	open := func() *pebble.DB {
		db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	busy, idle := open(), open()
	s := New()
	s.RegisterPebble(PebbleDB{Name: "state", Metrics: busy.Metrics}, PebbleDB{Name: "raftlog", Metrics: idle.Metrics})
	if v := scrape(t, s, "synod_pebble_flushes_total", `db="state"`); v != 0 {
		t.Fatalf("flushes before any = %v", v)
	}
	val := make([]byte, 1024)
	for round := 0; round < 2; round++ { // two overlapping tables, so the compaction rewrites
		for i := 0; i < 2000; i++ {
			for j := range val {
				val[j] = byte(rand.Uint32())
			}
			if err := busy.Set([]byte(fmt.Sprintf("k%06d", i)), val, pebble.Sync); err != nil {
				t.Fatal(err)
			}
		}
		if err := busy.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if err := busy.Compact(t.Context(), []byte("k"), []byte("l"), true); err != nil {
		t.Fatal(err)
	}
	m := busy.Metrics()
	var flushed, compacted uint64
	for _, l := range m.Levels {
		flushed, compacted = flushed+l.TableBytesFlushed, compacted+l.TableBytesCompacted
	}
	for _, c := range []struct {
		name, labels string
		want         float64
	}{
		{"synod_pebble_flushes_total", `db="state"`, float64(m.Flush.Count)},
		{"synod_pebble_compactions_total", `db="state"`, float64(m.Compact.Count)},
		{"synod_pebble_flushed_bytes_total", `db="state"`, float64(flushed)},
		{"synod_pebble_compaction_written_bytes_total", `db="state"`, float64(compacted)},
		{"synod_pebble_wal_bytes_written_total", `db="state"`, float64(m.WAL.BytesWritten)},
		{"synod_pebble_level_tables", `db="state",level="6"`, float64(m.Levels[6].TablesCount)},
		{"synod_pebble_level_size_bytes", `db="state",level="6"`, float64(m.Levels[6].TablesSize)},
		{"synod_pebble_l0_files", `db="state"`, 0},
		{"synod_pebble_flushes_total", `db="raftlog"`, 0},
		{"synod_pebble_write_stalls_total", `db="state"`, 0},
	} {
		if got := scrape(t, s, c.name, c.labels); got != c.want {
			t.Errorf("%s{%s} = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if m.Flush.Count < 2 || compacted < 2000*1024 || flushed < 2000*1024 || m.Levels[6].TablesSize < 2000*1024/2 || m.WAL.BytesWritten < 2000*1024 {
		t.Fatalf("the database did not do what the test needs: %s", m)
	}
}

// A stall counts once however many times Pebble reports its beginning,
// its time counts while it lasts, and it stops counting when writes resume.
func TestWriteStallsCountTime(t *testing.T) {
	now := time.Unix(1000, 0)
	w := NewWriteStalls(func() time.Time { return now })
	s := New()
	s.RegisterPebble(PebbleDB{Name: "state", Metrics: func() *pebble.Metrics { return &pebble.Metrics{} }, Stalls: w})
	w.Begin()
	now = now.Add(2 * time.Second)
	w.Begin()
	if n, secs := scrape(t, s, "synod_pebble_write_stalls_total", `db="state"`), scrape(t, s, "synod_pebble_write_stall_seconds_total", `db="state"`); n != 1 || secs != 2 {
		t.Fatalf("during a stall: %v stalls, %v s; want 1, 2", n, secs)
	}
	now = now.Add(time.Second)
	w.End()
	now = now.Add(time.Hour)
	w.End()
	if n, secs := scrape(t, s, "synod_pebble_write_stalls_total", `db="state"`), scrape(t, s, "synod_pebble_write_stall_seconds_total", `db="state"`); n != 1 || secs != 3 {
		t.Fatalf("after it: %v stalls, %v s; want 1, 3", n, secs)
	}
	var none *WriteStalls
	none.Begin()
	none.End()
}
