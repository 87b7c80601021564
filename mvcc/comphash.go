package mvcc

import (
	"hash"
	"hash/crc32"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// KeyValueHash is the hash of the history as a compaction found it, etcd's
// mvcc.KeyValueHash: HashKV at Revision, the compaction's revision, with
// CompactRevision, the compaction revision before it. Every member records
// the same value for the same compaction unless their histories differ,
// which is what etcd's CompactHashCheck compares.
type KeyValueHash struct {
	Hash            uint32
	CompactRevision int64
	Revision        int64
}

// compactHashesKept is how many compaction hashes a store keeps, newest
// first out (etcd's hashStorageMaxSize).
const compactHashesKept = 10

// hashJob is a compaction whose hash is still to be computed, from a
// snapshot taken when it was applied (before its physical deletion).
type hashJob struct {
	s             *Store
	snap          *pebble.Snapshot
	rev, previous int64
}

// queueCompactHash arranges for the compaction to rev, being applied over
// the compaction revision previous, to be hashed by the background
// compactor before it deletes anything for it: Apply calls it before it
// publishes rev as the compaction revision, with a snapshot of the history
// as the compaction finds it. A job still waiting is replaced (its
// compaction is not hashed). Only with Options.CompactHashes.
func (s *Store) queueCompactHash(rev, previous int64) {
	if !s.opts.CompactHashes {
		return
	}
	job := &hashJob{s: s, snap: s.newSnapshot(), rev: rev, previous: previous}
	s.cmu.Lock()
	old := s.hashJob
	s.hashJob = job
	s.cmu.Unlock()
	old.release()
}

func (j *hashJob) release() {
	if j != nil {
		_ = j.s.closeSnapshot(j.snap)
	}
}

// runCompactHash computes and keeps the hash of the waiting job, if any,
// and records the outcome for CompactionErr. The compactor calls it before
// a physical pass.
func (s *Store) runCompactHash() {
	s.cmu.Lock()
	job := s.hashJob
	s.hashJob = nil
	s.cmu.Unlock()
	if job == nil {
		return
	}
	defer job.release()
	h, err := hashAt(job.snap, job.rev, job.previous)
	s.cmu.Lock()
	defer s.cmu.Unlock()
	s.hashErr = err
	if err != nil {
		return
	}
	s.hashes = append(s.hashes, KeyValueHash{Hash: h, CompactRevision: job.previous, Revision: job.rev})
	if len(s.hashes) > compactHashesKept {
		s.hashes = slices.Delete(s.hashes, 0, len(s.hashes)-compactHashesKept)
	}
}

// dropCompactHashes forgets the kept hashes and any waiting job (a restore
// replaces the history they describe; a closed store has no use for them).
func (s *Store) dropCompactHashes() {
	s.cmu.Lock()
	job := s.hashJob
	s.hashJob, s.hashes = nil, nil
	s.cmu.Unlock()
	job.release()
}

// CompactHashes returns the kept compaction hashes, oldest first: those of
// the compactions applied since the store was opened (or restored), at
// most compactHashesKept. A compaction whose physical pass resumes after a
// restart is not hashed (part of what it deletes may be gone already).
func (s *Store) CompactHashes() []KeyValueHash {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return slices.Clone(s.hashes)
}

// HashByRev is etcd's HashByRev, what a peer answers a compaction hash
// check with: the kept compaction hash if rev is a kept compaction's
// revision (with that compaction's CompactRevision), else HashKV(rev).
func (s *Store) HashByRev(rev int64) (hash uint32, hashRev, compactRev int64, err error) {
	s.cmu.Lock()
	for _, h := range s.hashes {
		if h.Revision == rev {
			s.cmu.Unlock()
			return h.Hash, h.Revision, h.CompactRevision, nil
		}
	}
	s.cmu.Unlock()
	return s.HashKV(rev)
}

// hashAt is HashKV's hash of the history in snap at rev with compaction
// revision compactRev.
func hashAt(snap *pebble.Snapshot, rev, compactRev int64) (uint32, error) {
	h := crc32.New(castagnoli)
	if err := hashHistory(snap, h, rev, compactRev); err != nil {
		return 0, err
	}
	return h.Sum32(), nil
}

// hashHistory feeds h what HashKV hashes: etcd's bucket name, then the
// versions kept at compactRev and the changes up to rev, in revision order.
func hashHistory(snap *pebble.Snapshot, h hash.Hash32, rev, compactRev int64) error {
	h.Write(etcdKeyBucket)
	if err := hashKept(snap, h, rev, compactRev); err != nil {
		return err
	}
	return hashChanges(snap, h, rev, compactRev)
}
