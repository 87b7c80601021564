package metrics

import (
	"strconv"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// PebbleDB is one of a member's Pebble databases as RegisterPebble reports
// it: the state or the raft log (docs/architecture.md, "Two Pebble
// databases per member").
type PebbleDB struct {
	// Name is the value of the db label: "state" or "raftlog".
	Name string
	// Metrics returns the database's figures now (pebble.DB.Metrics).
	Metrics func() *pebble.Metrics
	// Stalls counts the database's write stalls; nil reports none.
	Stalls *WriteStalls
}

// WriteStalls counts one database's write stalls and the time writes spent
// stalled, fed by its pebble.EventListener: Begin from WriteStallBegin, End
// from WriteStallEnd. A nil *WriteStalls ignores both.
type WriteStalls struct {
	now   func() time.Time
	mu    sync.Mutex
	count uint64
	total time.Duration
	began time.Time // zero unless a stall is under way
}

// NewWriteStalls returns a counter that reads time from now.
func NewWriteStalls(now func() time.Time) *WriteStalls { return &WriteStalls{now: now} }

// Begin records that writes stalled.
func (w *WriteStalls) Begin() {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.began.IsZero() {
		w.count++
		w.began = w.now()
	}
}

// End records that writes resumed.
func (w *WriteStalls) End() {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.began.IsZero() {
		w.total += w.now().Sub(w.began)
		w.began = time.Time{}
	}
}

// read returns the stalls so far and their time, a stall under way
// included up to now, so the counter moves while writes are stalled.
func (w *WriteStalls) read() (uint64, time.Duration) {
	if w == nil {
		return 0, 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	t := w.total
	if !w.began.IsZero() {
		t += w.now().Sub(w.began)
	}
	return w.count, t
}

// RegisterPebble publishes the figures of dbs under synod's own names
// (etcd has no equivalent), each with a db label; the per-level ones also
// carry a level label. Every scrape reads each database's Metrics once.
func (s *Set) RegisterPebble(dbs ...PebbleDB) {
	s.reg.MustRegister(pebbleCollector(dbs))
}

// pebbleFigure is one figure read from a database's metrics.
type pebbleFigure struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(*pebble.Metrics) float64
}

func pebbleDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("synod_pebble_"+name, help, append([]string{"db"}, labels...), nil)
}

var (
	gauge   = prometheus.GaugeValue
	counter = prometheus.CounterValue

	pebbleFigures = []pebbleFigure{
		{pebbleDesc("block_cache_size_bytes", "Bytes of sstable blocks held in Pebble's block cache."), gauge,
			func(m *pebble.Metrics) float64 { return float64(m.BlockCache.Size) }},
		{pebbleDesc("block_cache_hits_total", "Block reads served from Pebble's block cache."), counter,
			func(m *pebble.Metrics) float64 { return float64(m.BlockCache.Hits) }},
		{pebbleDesc("block_cache_misses_total", "Block reads that went to an sstable file."), counter,
			func(m *pebble.Metrics) float64 { return float64(m.BlockCache.Misses) }},
		{pebbleDesc("memtable_size_bytes", "Bytes allocated to Pebble's live memtables (charged against the block cache)."), gauge,
			func(m *pebble.Metrics) float64 { return float64(m.MemTable.Size) }},
		{pebbleDesc("l0_files", "Sstables in level 0 (flushes waiting for compaction)."), gauge,
			func(m *pebble.Metrics) float64 { return float64(m.Levels[0].TablesCount) }},
		{pebbleDesc("l0_sublevels", "Sublevels of level 0; compactions start at 32 (state) and writes stop at 128."), gauge,
			func(m *pebble.Metrics) float64 { return float64(m.Levels[0].Sublevels) }},
		{pebbleDesc("read_amplification", "Tables a point read may consult: L0's sublevels plus every non-empty level below."), gauge,
			func(m *pebble.Metrics) float64 { return float64(m.ReadAmp()) }},
		{pebbleDesc("disk_usage_bytes", "Bytes of the database on disk: tables, WAL, manifest, obsolete files not yet removed."), gauge,
			func(m *pebble.Metrics) float64 { return float64(m.DiskSpaceUsage()) }},
		{pebbleDesc("compaction_debt_bytes", "Estimated bytes compactions must rewrite to bring every level within its target size."), gauge,
			func(m *pebble.Metrics) float64 { return float64(m.Compact.EstimatedDebt) }},
		{pebbleDesc("compactions_in_progress", "Compactions running now."), gauge,
			func(m *pebble.Metrics) float64 { return float64(m.Compact.NumInProgress) }},
		{pebbleDesc("compactions_total", "Compactions completed."), counter,
			func(m *pebble.Metrics) float64 { return float64(m.Compact.Count) }},
		{pebbleDesc("compaction_seconds_total", "Time spent in completed compactions."), counter,
			func(m *pebble.Metrics) float64 { return m.Compact.Duration.Seconds() }},
		{pebbleDesc("flushes_total", "Memtable flushes completed."), counter,
			func(m *pebble.Metrics) float64 { return float64(m.Flush.Count) }},
		{pebbleDesc("flushed_bytes_total", "Bytes of sstables written by flushes."), counter,
			func(m *pebble.Metrics) float64 {
				return levelSum(m, func(l *pebble.LevelMetrics) uint64 { return l.TableBytesFlushed })
			}},
		{pebbleDesc("compaction_read_bytes_total", "Bytes of sstables compactions read."), counter,
			func(m *pebble.Metrics) float64 {
				return levelSum(m, func(l *pebble.LevelMetrics) uint64 { return l.TableBytesRead })
			}},
		{pebbleDesc("compaction_written_bytes_total", "Bytes of sstables compactions wrote."), counter,
			func(m *pebble.Metrics) float64 {
				return levelSum(m, func(l *pebble.LevelMetrics) uint64 { return l.TableBytesCompacted })
			}},
		{pebbleDesc("ingested_bytes_total", "Bytes of sstables ingested (a snapshot installed)."), counter,
			func(m *pebble.Metrics) float64 {
				return levelSum(m, func(l *pebble.LevelMetrics) uint64 { return l.TableBytesIngested })
			}},
		{pebbleDesc("wal_bytes_written_total", "Bytes written to the write-ahead log, framing included."), counter,
			func(m *pebble.Metrics) float64 { return float64(m.WAL.BytesWritten) }},
	}

	levelTablesDesc = pebbleDesc("level_tables", "Sstables in each level.", "level")
	levelBytesDesc  = pebbleDesc("level_size_bytes", "Bytes of sstables in each level.", "level")
	stallsDesc      = pebbleDesc("write_stalls_total", "Times writes stalled behind flushes or level 0 compactions.")
	stallTimeDesc   = pebbleDesc("write_stall_seconds_total", "Time writes spent stalled (a stall under way counts up to now).")
)

// levelSum adds up one figure over every level. Pebble's own Total() is not
// used: it counts the bytes written to the WAL as flushed.
func levelSum(m *pebble.Metrics, f func(*pebble.LevelMetrics) uint64) float64 {
	var n uint64
	for i := range m.Levels {
		n += f(&m.Levels[i])
	}
	return float64(n)
}

// pebbleCollector is a prometheus.Collector over a member's databases.
type pebbleCollector []PebbleDB

// Describe implements prometheus.Collector.
func (c pebbleCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, f := range pebbleFigures {
		ch <- f.desc
	}
	for _, d := range []*prometheus.Desc{levelTablesDesc, levelBytesDesc, stallsDesc, stallTimeDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c pebbleCollector) Collect(ch chan<- prometheus.Metric) {
	for _, db := range c {
		m := db.Metrics()
		for _, f := range pebbleFigures {
			ch <- prometheus.MustNewConstMetric(f.desc, f.kind, f.value(m), db.Name)
		}
		for i := range m.Levels {
			l := strconv.Itoa(i)
			ch <- prometheus.MustNewConstMetric(levelTablesDesc, gauge, float64(m.Levels[i].TablesCount), db.Name, l)
			ch <- prometheus.MustNewConstMetric(levelBytesDesc, gauge, float64(m.Levels[i].TablesSize), db.Name, l)
		}
		n, t := db.Stalls.read()
		ch <- prometheus.MustNewConstMetric(stallsDesc, counter, float64(n), db.Name)
		ch <- prometheus.MustNewConstMetric(stallTimeDesc, counter, t.Seconds(), db.Name)
	}
}
