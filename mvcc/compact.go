package mvcc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// errStopped aborts a physical compaction pass when the store stops.
var errStopped = errors.New("mvcc: compaction stopped")

// compactor is the background physical compaction of a Store. The logical
// compaction revision is recorded by Apply; the worker then deletes, in
// bounded batches, what no read at or above it can see.
type compactor struct {
	cmu      sync.Mutex
	finished int64 // physical compaction done up to here
	waiters  []compactWaiter
	lastErr  error

	kick chan struct{}
	// queued counts the kicks in kick (0 or 1) and busy is set while a
	// pass runs, both under cmu; idle is signalled when both fall to
	// nothing (WaitCompactorIdle).
	queued  int
	busy    bool
	looping bool // compactLoop runs
	idle    sync.Cond

	hashJob *hashJob       // a compaction still to be hashed (comphash.go)
	hashes  []KeyValueHash // kept compaction hashes, oldest first
	hashErr error          // why the last compaction hash failed, if it did

	// reclaimMu runs one manual Pebble compaction at a time (Reclaim,
	// CompactAll).
	reclaimMu sync.Mutex
	// unreclaimed is the size of the versions deleted since the last
	// Reclaim (keys and values; compactLoop's own).
	unreclaimed int64

	lifeMu sync.Mutex // guards stop/done
	stop   chan struct{}
	done   chan struct{}
}

type compactWaiter struct {
	rev int64
	ch  chan struct{}
}

func (c *compactor) init() {
	c.kick = make(chan struct{}, 1)
	c.idle.L = &c.cmu
}

// CompactionErr returns the error that stopped the last background physical
// compaction pass (I/O or corruption), and the one that stopped the last
// compaction hash (Options.CompactHashes), nil if none. Reads stay correct; the
// pass is retried on the next compaction or Open.
func (s *Store) CompactionErr() error {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return errors.Join(s.lastErr, s.hashErr)
}

func (s *Store) kickCompactor() {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	select {
	case s.kick <- struct{}{}:
		s.queued++
	default: // a kick is already queued: its pass reads the newest target
	}
}

// WaitCompactorIdle blocks until the background compactor has no pass
// running or queued, or is not running. Nothing in a member waits for it; the
// deterministic simulation calls it after every step, so that what a pass
// writes and flushes (Reclaim flushes the memtable) lands at the same point of
// every replay of a seed instead of whenever its goroutine is scheduled.
func (s *Store) WaitCompactorIdle() {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	for !s.idleLocked() {
		s.idle.Wait()
	}
}

// idleLocked reports, under cmu, whether no pass runs or is queued.
func (s *Store) idleLocked() bool { return !s.looping || (s.queued == 0 && !s.busy) }

// compactorPass marks a pass as started (true) or ended (false).
func (s *Store) compactorPass(start bool) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if start {
		s.queued--
		s.busy = true
		return
	}
	s.busy = false
	if s.queued == 0 {
		s.idle.Broadcast()
	}
}

func (s *Store) startCompactor() {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.stop != nil {
		return
	}
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	s.cmu.Lock()
	s.looping = true
	s.cmu.Unlock()
	go s.compactLoop(s.stop, s.done)
	s.kickCompactor()
}

func (s *Store) stopCompactor() {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.stop == nil {
		return
	}
	close(s.stop)
	<-s.done
	s.stop, s.done = nil, nil
}

// waitPhysical returns a channel closed once physical compaction reached rev.
func (s *Store) waitPhysical(rev int64) <-chan struct{} {
	ch := make(chan struct{})
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if s.finished >= rev {
		close(ch)
	} else {
		s.waiters = append(s.waiters, compactWaiter{rev: rev, ch: ch})
	}
	return ch
}

// setPhysical records that physical compaction reached rev and releases the
// waiters it satisfies.
func (s *Store) setPhysical(rev int64) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	s.finished = rev
	kept := s.waiters[:0]
	for _, w := range s.waiters {
		if w.rev <= rev {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	s.waiters = kept
}

func (s *Store) physicalRev() int64 {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return s.finished
}

func (s *Store) compactLoop(stop, done chan struct{}) {
	defer close(done)
	defer s.compactorStopped()
	for {
		select {
		case <-stop:
			return
		case <-s.kick:
		}
		s.compactorPass(true)
		s.compact(stop)
		s.compactorPass(false)
	}
}

// compactorStopped releases WaitCompactorIdle when the loop ends. A kick
// left in the channel stays counted in queued, for the next loop to take.
func (s *Store) compactorStopped() {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	s.busy, s.looping = false, false
	s.idle.Broadcast()
}

// compact runs the passes a kick asks for: to the newest compaction target,
// then a reclaim if it is worth it, and the queued compaction hash.
func (s *Store) compact(stop chan struct{}) {
	for target := s.compactRev.Load(); target > s.physicalRev(); target = s.compactRev.Load() {
		// The compaction to target queued its hash before it published
		// target: hash it before deleting anything for it.
		s.runCompactHash()
		freed, err := s.compactTo(target, stop)
		if errors.Is(err, errStopped) {
			return
		}
		if s.unreclaimed += freed; err == nil && s.worthReclaiming() {
			if err = s.Reclaim(); err == nil {
				s.unreclaimed = 0
				if h := s.opts.hooks; h != nil && h.reclaimed != nil {
					h.reclaimed()
				}
			}
		}
		s.cmu.Lock()
		s.lastErr = err
		s.cmu.Unlock()
		if err != nil {
			break
		}
	}
	s.runCompactHash() // release a queued snapshot promptly in any case
}

// reclaimShare: the background compactor rewrites the state keyspace
// (Reclaim) once the versions deleted since the last rewrite add up to this
// share of the state's size on disk, so a rewrite costs at most a few times
// what it frees. Smaller leftovers go with Pebble's own compactions (which
// favour tables holding deletions) or the next rewrite.
const reclaimShare = 4 // a quarter

// worthReclaiming reports whether the versions deleted since the last
// Reclaim are worth a rewrite of the state keyspace (reclaimShare); if the
// size cannot be estimated, it is.
func (s *Store) worthReclaiming() bool {
	if s.unreclaimed == 0 {
		return false
	}
	usage, err := s.db.EstimateDiskUsage(stateStart, []byte{prefixOthers})
	return err != nil || s.unreclaimed*reclaimShare >= int64(usage)
}

// compactTo physically compacts to rev in batches, resuming from the
// persisted progress of an interrupted pass at the same revision. It returns
// the size (keys and values) of the versions it deleted.
func (s *Store) compactTo(rev int64, stop <-chan struct{}) (freed int64, err error) {
	cursor, err := s.compactCursor(rev)
	if err != nil {
		return 0, err
	}
	for batch := 0; ; batch++ {
		select {
		case <-stop:
			return freed, errStopped
		default:
		}
		next, n, err := s.compactBatch(rev, cursor, batch)
		freed += n
		if err != nil {
			return freed, err
		}
		if next == nil {
			s.setPhysical(rev)
			return freed, nil
		}
		cursor = next
	}
}

// compactCursor returns where a pass at rev starts: the persisted resume key
// if a pass at rev was interrupted, else the start of the version keyspace
// (a scan of every key), or, when few keys changed since the last finished
// pass (logPassCheaper), the first revision-log entry after it. A key with
// no version newer than the last finished pass was compacted by it (its
// newest version at or below that revision kept, nothing newer to supersede
// it), and the log, trimmed only below that pass, lists every change since:
// such a pass costs the changes, not the size of the store.
func (s *Store) compactCursor(rev int64) ([]byte, error) {
	p, err := readMeta(s.db, metaProgress, 0)
	if err != nil {
		return nil, err
	}
	if len(p) > 8 && int64(binary.BigEndian.Uint64(p)) == rev && (p[8] == prefixVersion || p[8] == prefixLog) {
		return p[8:], nil
	}
	f, err := readMetaInt(s.db, metaFinished, -1) // what the log trim matches
	if err != nil || !s.logPassCheaper(f, rev) {
		return stateStart, err
	}
	return logKey(f+1, 0), nil
}

// logPassShare: a pass reads the revision log rather than scanning when the
// revisions since the last finished pass are under 1/logPassShare of the
// versions stored. The log pass seeks each changed key where the scan steps
// to it: at 0.3 GiB of 1 KiB values, a log pass over every key took 7x the
// scan (docs/performance.md, "Scale").
const logPassShare = 16

// logPassCheaper reports whether a pass from the last finished revision f
// to rev should read the revision log. The versions stored are estimated
// from the version keyspace's size on disk over the mean size of the first
// few versions; compression makes that an underestimate, which errs towards
// the scan. A store never compacted (f < 0) scans.
func (s *Store) logPassCheaper(f, rev int64) bool {
	if f < 0 {
		return false
	}
	usage, err := s.db.EstimateDiskUsage(stateStart, versionEnd)
	if err != nil {
		return false
	}
	size := s.meanVersionSize()
	return size > 0 && (rev-f)*logPassShare < int64(usage)/size
}

// meanVersionSize returns the mean size (key and value) of the first 64
// versions of the keyspace, 0 if there are none or they cannot be read.
func (s *Store) meanVersionSize() int64 {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: stateStart, UpperBound: versionEnd})
	if err != nil {
		return 0
	}
	defer it.Close()
	var n, total int64
	for valid := it.First(); valid && n < 64; valid = it.Next() {
		total += int64(len(it.Key()) + len(it.Value()))
		n++
	}
	if it.Error() != nil || n == 0 {
		return 0
	}
	return total / n
}

// compactBatch deletes up to CompactionBatch versions, from cursor on (a
// version key: scanBatch; a revision-log key: logBatch), and commits them
// with the resume key, or, at the end, with the revision-log trim and the
// finished marker. It returns the resume key (nil when the pass is complete)
// and the size of the versions deleted (0 if the batch was not committed).
func (s *Store) compactBatch(rev int64, cursor []byte, batchNo int) (next []byte, freed int64, err error) {
	b := s.db.NewBatch()
	defer b.Close()
	if cursor[0] == prefixLog {
		next, freed, err = s.logBatch(b, rev, cursor)
	} else {
		next, freed, err = s.scanBatch(b, rev, cursor)
	}
	if err != nil {
		return nil, 0, err
	}
	if err := s.finishCompactBatch(b, rev, next); err != nil {
		return nil, 0, err
	}
	if h := s.opts.hooks; h != nil && h.beforeCompactCommit != nil {
		if err := h.beforeCompactCommit(batchNo); err != nil {
			return nil, 0, err
		}
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return nil, 0, fmt.Errorf("mvcc: commit compaction batch: %w", err)
	}
	return next, freed, nil
}

// scanBatch compacts the keys of the version keyspace from cursor on, up to
// CompactionBatch deletions or 4x that many keys, into b. It returns the
// resume key (nil at the end of the keyspace) and the size deleted.
func (s *Store) scanBatch(b *pebble.Batch, rev int64, cursor []byte) (next []byte, freed int64, err error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: cursor, UpperBound: versionEnd})
	if err != nil {
		return nil, 0, fmt.Errorf("mvcc: compaction iterator: %w", err)
	}
	defer func() { err = closeIter(it, err) }()
	limit, deleted := s.opts.CompactionBatch, 0
	for valid, scanned := it.First(), 0; valid; valid, scanned = it.Valid(), scanned+1 { // compactKey steps it
		prefix, _, err := splitVersionKey(it.Key())
		if err != nil {
			return nil, 0, err
		}
		prefix = bytes.Clone(prefix)
		if deleted >= limit || scanned >= 4*limit {
			return prefix, freed, nil
		}
		n, size, complete, err := compactKey(it, b, prefix, rev, limit-deleted)
		if err != nil {
			return nil, 0, err
		}
		deleted, freed = deleted+n, freed+size
		if !complete {
			return prefix, freed, nil
		}
	}
	return nil, freed, nil
}

// logBatch compacts, into b, the keys of up to CompactionBatch revision-log
// entries from cursor up to rev, up to CompactionBatch deletions. It returns
// the resume key (the log key of the first entry not read, or cursor again if
// the deletion budget ran out first: the keys already done have nothing left
// to delete; nil at the end) and the size deleted.
func (s *Store) logBatch(b *pebble.Batch, rev int64, cursor []byte) (next []byte, freed int64, err error) {
	limit, deleted := s.opts.CompactionBatch, 0
	prefixes, next, err := s.changedKeys(cursor, rev, limit)
	if err != nil {
		return nil, 0, err
	}
	versions, err := s.db.NewIter(&pebble.IterOptions{LowerBound: stateStart, UpperBound: versionEnd})
	if err != nil {
		return nil, 0, fmt.Errorf("mvcc: compaction iterator: %w", err)
	}
	defer func() { err = closeIter(versions, err) }()
	for _, prefix := range prefixes {
		if deleted >= limit {
			return cursor, freed, nil
		}
		if !seekVersions(versions, prefix) {
			continue // no version left (a tombstone compacted away)
		}
		n, size, complete, err := compactKey(versions, b, prefix, rev, limit-deleted)
		if err != nil {
			return nil, 0, err
		}
		deleted, freed = deleted+n, freed+size
		if !complete {
			return cursor, freed, nil
		}
	}
	return next, freed, nil
}

// seekSteps is how many versions seekVersions steps over before it seeks.
const seekSteps = 16

// seekVersions positions it on the newest version of prefix and reports
// whether there is one. The prefixes of a batch come sorted and it only moves
// forward, so the versions of prefix cannot be behind it: if it is close (a
// pass over changes to most keys finds the next key right under it) a few
// steps reach them, and a key past them means there are none; else it seeks.
// Steps are much cheaper than seeks, which search every level afresh.
func seekVersions(it *pebble.Iterator, prefix []byte) bool {
	for i := 0; it.Valid() && i < seekSteps; i++ {
		if bytes.HasPrefix(it.Key(), prefix) {
			return true
		}
		if bytes.Compare(it.Key(), prefix) > 0 {
			return false
		}
		it.Next()
	}
	return it.SeekGE(prefix) && bytes.HasPrefix(it.Key(), prefix)
}

// changedKeys returns the version prefixes of the keys of up to n
// revision-log entries from cursor up to rev, once each and sorted, and the
// log key of the first entry not read (nil if none is left). Visited in key
// order, with forward seeks, they read each block of the versions once
// however the changes fall, as a scan of the keyspace would: a pass over
// changes to most keys costs no more than a scan, and one over a few costs
// a few seeks.
func (s *Store) changedKeys(cursor []byte, rev int64, n int) (prefixes [][]byte, next []byte, err error) {
	logs, err := s.db.NewIter(&pebble.IterOptions{LowerBound: cursor, UpperBound: logKey(rev+1, 0)})
	if err != nil {
		return nil, nil, fmt.Errorf("mvcc: compaction iterator: %w", err)
	}
	defer func() { err = closeIter(logs, err) }()
	seen := make(map[string]struct{}, n)
	valid := logs.First()
	for read := 0; valid && read < n; valid, read = logs.Next(), read+1 {
		p, err := openLogEntry(logs)
		if err != nil {
			return nil, nil, err
		}
		prefix := versionPrefix(p[1:])
		if _, ok := seen[string(prefix)]; !ok {
			seen[string(prefix)] = struct{}{}
			prefixes = append(prefixes, prefix)
		}
	}
	if valid {
		next = bytes.Clone(logs.Key())
	}
	slices.SortFunc(prefixes, bytes.Compare)
	return prefixes, next, nil
}

// finishCompactBatch adds the progress meta (next != nil) or the end of the
// pass: trim the revision log below rev, mark rev finished.
func (s *Store) finishCompactBatch(b *pebble.Batch, rev int64, next []byte) error {
	if next != nil {
		return setMeta(b, metaProgress, append(be64(uint64(rev)), next...))
	}
	if rev > 0 {
		if err := b.DeleteRange(logStart, logKey(rev, 0), nil); err != nil {
			return err
		}
	}
	if err := b.Delete(metaProgress, nil); err != nil {
		return err
	}
	return setMeta(b, metaFinished, be64(uint64(rev)))
}

// compactKey handles the versions of one user key, the iterator being on its
// newest version: keep the newest version <= rev unless it is a tombstone,
// delete all older ones, and the tombstone last (so a read never sees an
// older version resurface). It deletes at most budget versions; complete is
// false if it ran out (the key is then processed again from its start).
// size is that of the deleted versions, keys and values.
func compactKey(it *pebble.Iterator, b *pebble.Batch, prefix []byte, rev int64, budget int) (n int, size int64, complete bool, err error) {
	if _, mod, _ := splitVersionKey(it.Key()); mod > rev {
		if !it.SeekGE(appendRev(bytes.Clone(prefix), rev)) || !bytes.HasPrefix(it.Key(), prefix) {
			return 0, 0, true, nil
		}
	}
	v, err := it.ValueAndErr()
	if err != nil {
		return 0, 0, false, fmt.Errorf("mvcc: compaction read: %w", err)
	}
	tag, _, _, err := openVersion(it.Key(), v)
	if err != nil {
		return 0, 0, false, err
	}
	var tomb []byte
	tombSize := int64(len(it.Key()) + len(v))
	if tag == tagTombstone {
		tomb = bytes.Clone(it.Key())
	}
	for valid := it.Next(); valid && bytes.HasPrefix(it.Key(), prefix); valid = it.Next() {
		if n >= budget {
			return n, size, false, nil
		}
		if err := b.Delete(it.Key(), nil); err != nil {
			return n, size, false, err
		}
		n, size = n+1, size+int64(len(it.Key())+len(it.Value()))
	}
	if tomb != nil {
		if n >= budget {
			return n, size, false, nil
		}
		if err := b.Delete(tomb, nil); err != nil {
			return n, size, false, err
		}
		n, size = n+1, size+tombSize
	}
	return n, size, true, nil
}

// Reclaim makes Pebble drop what physical compaction deleted: a manual
// Pebble compaction of the state keyspace (keys 0x10 up to 0x20), which
// flushes the memtable and rewrites the tables the deletion tombstones sit
// in, so the old versions leave the disk instead of waiting for Pebble's own
// compaction heuristics. Its cost is one rewrite of the state keyspace, so the
// background compactor runs it after a finished pass only once the versions
// deleted since the last one are worth it (reclaimShare). Concurrent reads
// and writes go on meanwhile.
func (s *Store) Reclaim() error {
	s.reclaimMu.Lock()
	defer s.reclaimMu.Unlock()
	if err := s.db.Compact(context.Background(), stateStart, []byte{prefixOthers}, false); err != nil {
		return fmt.Errorf("mvcc: reclaim space: %w", err)
	}
	return nil
}

// CompactAll compacts the whole database (every key of every owner), after
// any Reclaim in progress: the two manual compactions of overlapping ranges
// run one after the other instead of competing for the same tables.
// Defragment calls it.
func (s *Store) CompactAll() error {
	s.reclaimMu.Lock()
	defer s.reclaimMu.Unlock()
	if err := s.db.Compact(context.Background(), []byte{0x00}, []byte{0xff}, true); err != nil {
		return fmt.Errorf("mvcc: compact all: %w", err)
	}
	return nil
}
