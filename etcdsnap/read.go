package etcdsnap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"go.etcd.io/etcd/api/v3/authpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/server/v3/lease/leasepb"
	"google.golang.org/protobuf/proto"
)

// Bucket names and meta keys (etcd's schema).
var (
	bucketKey            = []byte("key")
	bucketMeta           = []byte("meta")
	bucketLease          = []byte("lease")
	bucketAlarm          = []byte("alarm")
	bucketCluster        = []byte("cluster")
	bucketMembers        = []byte("members")
	bucketMembersRemoved = []byte("members_removed")
	bucketAuth           = []byte("auth")
	bucketAuthUsers      = []byte("authUsers")
	bucketAuthRoles      = []byte("authRoles")

	keyConsistentIndex  = []byte("consistent_index")
	keyTerm             = []byte("term")
	keyConfState        = []byte("confState")
	keyStorageVersion   = []byte("storageVersion")
	keyScheduledCompact = []byte("scheduledCompactRev")
	keyFinishedCompact  = []byte("finishedCompactRev")
	keyClusterVersion   = []byte("clusterVersion")
	keyAuthEnabled      = []byte("authEnabled")
	keyAuthRevision     = []byte("authRevision")
)

// Snapshot is an etcd snapshot file opened for reading.
type Snapshot struct {
	db  *bolt.DB
	sum []byte
}

// Open verifies the file at path (its sha256 trailer, unless skipHash) and
// opens its database read-only. Errors wrap ErrIntegrity or ErrCorrupt.
func Open(path string, skipHash bool) (*Snapshot, error) {
	_, sum, err := verify(path, skipHash)
	if err != nil {
		return nil, err
	}
	var db *bolt.DB
	err = guard(func() error {
		var oerr error
		db, oerr = bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
		return oerr
	})
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("etcdsnap: %s is locked by another process (a running etcd's own database?): %w", path, err)
	case err != nil && !errors.Is(err, ErrCorrupt):
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, path, err)
	case err != nil:
		return nil, err
	}
	return &Snapshot{db: db, sum: sum}, nil
}

// Sum is the sha256 of the database (what the trailer holds).
func (s *Snapshot) Sum() []byte { return bytes.Clone(s.sum) }

// Close closes the database.
func (s *Snapshot) Close() error { return s.db.Close() }

// guard runs fn, turning a panic or a memory fault while bbolt reads a
// damaged page into ErrCorrupt.
func guard(fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrCorrupt, r)
		}
	}()
	return fn()
}

// view runs fn in a read transaction under guard.
func (s *Snapshot) view(fn func(tx *bolt.Tx) error) error {
	return guard(func() error { return s.db.View(fn) })
}

// Meta is what synod reads from the meta bucket.
type Meta struct {
	// ConsistentIndex and Term are the raft index and term of the last
	// applied entry.
	ConsistentIndex, Term uint64
	// ScheduledCompact and FinishedCompact are the compaction revisions
	// requested and completed; -1 when absent.
	ScheduledCompact, FinishedCompact int64
	// StorageVersion is the storage schema version ("" before etcd 3.6).
	StorageVersion string
}

// CompactRev is the compaction revision etcd serves after it starts from
// this state (it resumes a scheduled compaction): the larger of the two, or
// -1 if the history was never compacted.
func (m Meta) CompactRev() int64 { return max(m.ScheduledCompact, m.FinishedCompact) }

// Meta reads the meta bucket.
func (s *Snapshot) Meta() (Meta, error) {
	m := Meta{ScheduledCompact: -1, FinishedCompact: -1}
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMeta)
		if b == nil {
			return fmt.Errorf("%w: no %q bucket", ErrCorrupt, bucketMeta)
		}
		var err error
		if m.ConsistentIndex, err = uint64Value(b, keyConsistentIndex); err != nil {
			return err
		}
		if m.Term, err = uint64Value(b, keyTerm); err != nil {
			return err
		}
		if m.ScheduledCompact, err = compactValue(b, keyScheduledCompact); err != nil {
			return err
		}
		if m.FinishedCompact, err = compactValue(b, keyFinishedCompact); err != nil {
			return err
		}
		m.StorageVersion = string(b.Get(keyStorageVersion))
		return nil
	})
	return m, err
}

// uint64Value reads an 8-byte big-endian value; 0 if absent.
func uint64Value(b *bolt.Bucket, k []byte) (uint64, error) {
	v := b.Get(k)
	if v == nil {
		return 0, nil
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: meta %s: %d bytes", ErrCorrupt, k, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// compactValue reads a compaction revision (a revision key); -1 if absent.
func compactValue(b *bolt.Bucket, k []byte) (int64, error) {
	v := b.Get(k)
	if v == nil {
		return -1, nil
	}
	r, err := ParseRevision(v)
	if err != nil {
		return 0, fmt.Errorf("meta %s: %w", k, err)
	}
	return r.Main, nil
}

// ForEachRevision calls fn with every record of the key bucket, in
// revision order. A record etcdutl's --bump-revision left (an empty value)
// is passed as a KeyValue with no key.
func (s *Snapshot) ForEachRevision(fn func(Revision, *mvccpb.KeyValue) error) error {
	return s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKey)
		if b == nil {
			return fmt.Errorf("%w: no %q bucket", ErrCorrupt, bucketKey)
		}
		return b.ForEach(func(k, v []byte) error {
			r, err := ParseRevision(k)
			if err != nil {
				return err
			}
			kv := &mvccpb.KeyValue{}
			if err := proto.Unmarshal(v, kv); err != nil {
				return fmt.Errorf("%w: revision %d/%d: %v", ErrCorrupt, r.Main, r.Sub, err)
			}
			return fn(r, kv)
		})
	})
}

// Leases reads the lease bucket (absent: none).
func (s *Snapshot) Leases() ([]*leasepb.Lease, error) {
	var out []*leasepb.Lease
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLease)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			l := &leasepb.Lease{}
			if err := proto.Unmarshal(v, l); err != nil || len(k) != 8 || int64(binary.BigEndian.Uint64(k)) != l.ID {
				return fmt.Errorf("%w: lease %x", ErrCorrupt, k)
			}
			out = append(out, l)
			return nil
		})
	})
	return out, err
}

// Auth is the auth state of a snapshot.
type Auth struct {
	// Enabled is whether auth is on.
	Enabled bool
	// Revision is the auth revision (etcd stores 0 before any auth change
	// and serves it as 1).
	Revision uint64
	// Users and Roles are every user and role, in name order.
	Users []*authpb.User
	Roles []*authpb.Role
}

// Auth reads the auth buckets (absent: auth never used).
func (s *Snapshot) Auth() (Auth, error) {
	var a Auth
	err := s.view(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketAuth); b != nil {
			a.Enabled = bytes.Equal(b.Get(keyAuthEnabled), []byte{1})
			var err error
			if a.Revision, err = uint64Value(b, keyAuthRevision); err != nil {
				return err
			}
		}
		if err := eachProto(tx, bucketAuthUsers, func() *authpb.User { return &authpb.User{} }, &a.Users); err != nil {
			return err
		}
		return eachProto(tx, bucketAuthRoles, func() *authpb.Role { return &authpb.Role{} }, &a.Roles)
	})
	return a, err
}

// eachProto unmarshals every value of a bucket, if it exists, into *out.
func eachProto[M proto.Message](tx *bolt.Tx, name []byte, newM func() M, out *[]M) error {
	b := tx.Bucket(name)
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error {
		m := newM()
		if err := proto.Unmarshal(v, m); err != nil {
			return fmt.Errorf("%w: %s %q: %v", ErrCorrupt, name, k, err)
		}
		*out = append(*out, m)
		return nil
	})
}
