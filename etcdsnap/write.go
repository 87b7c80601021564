package etcdsnap

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/server/v3/lease/leasepb"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// StorageVersion is the storage schema and cluster version written into
// a snapshot: etcd 3.7's.
const StorageVersion = "3.7.0"

// writeBatch and writeBatchBytes bound one bbolt transaction (its dirty
// pages stay in memory until it commits).
const (
	writeBatch      = 20000
	writeBatchBytes = 32 << 20
)

// Writer writes a new snapshot database.
type Writer struct {
	db    *bolt.DB
	tx    *bolt.Tx
	n     int // records in tx
	bytes int // bytes of keys and values in tx
}

// Create creates the database at path (an empty or absent file) with
// every bucket etcd 3.7 creates.
func Create(path string) (*Writer, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoSync: true, Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("etcdsnap: create %s: %w", path, err)
	}
	w := &Writer{db: db}
	if err := w.begin(); err != nil {
		_ = db.Close()
		return nil, err
	}
	for _, name := range [][]byte{bucketKey, bucketMeta, bucketLease, bucketAlarm, bucketCluster,
		bucketMembers, bucketMembersRemoved, bucketAuth, bucketAuthUsers, bucketAuthRoles} {
		if _, err := w.tx.CreateBucketIfNotExists(name); err != nil {
			w.Abort()
			return nil, fmt.Errorf("etcdsnap: create bucket %s: %w", name, err)
		}
	}
	return w, nil
}

func (w *Writer) begin() error {
	tx, err := w.db.Begin(true)
	if err != nil {
		return fmt.Errorf("etcdsnap: begin: %w", err)
	}
	w.tx, w.n, w.bytes = tx, 0, 0
	return nil
}

// put writes a copy of one record (bbolt keeps the slices it is handed
// until the transaction commits), committing the transaction every
// writeBatch records or writeBatchBytes.
func (w *Writer) put(bucket, k, v []byte) error {
	k, v = bytes.Clone(k), bytes.Clone(v)
	b := w.tx.Bucket(bucket)
	if string(bucket) == string(bucketKey) {
		b.FillPercent = 0.9 // appended in order, as etcd's backend does
	}
	if err := b.Put(k, v); err != nil {
		return fmt.Errorf("etcdsnap: put %s: %w", bucket, err)
	}
	w.n, w.bytes = w.n+1, w.bytes+len(k)+len(v)
	if w.n < writeBatch && w.bytes < writeBatchBytes {
		return nil
	}
	if err := w.tx.Commit(); err != nil {
		return fmt.Errorf("etcdsnap: commit: %w", err)
	}
	return w.begin()
}

// PutRevision writes a key-bucket record: a revision key and the marshaled
// mvccpb.KeyValue. Records should come in revision order.
func (w *Writer) PutRevision(k, v []byte) error {
	if _, err := ParseRevision(k); err != nil {
		return err
	}
	return w.put(bucketKey, k, v)
}

// PutLease writes a lease.
func (w *Writer) PutLease(l *leasepb.Lease) error {
	v, err := proto.Marshal(l)
	if err != nil {
		return fmt.Errorf("etcdsnap: marshal lease: %w", err)
	}
	return w.put(bucketLease, binary.BigEndian.AppendUint64(nil, uint64(l.ID)), v)
}

// PutAuth writes the auth state.
func (w *Writer) PutAuth(a Auth) error {
	enabled := []byte{0}
	if a.Enabled {
		enabled = []byte{1}
	}
	if err := w.put(bucketAuth, keyAuthEnabled, enabled); err != nil {
		return err
	}
	if err := w.put(bucketAuth, keyAuthRevision, binary.BigEndian.AppendUint64(nil, a.Revision)); err != nil {
		return err
	}
	for _, u := range a.Users {
		if err := w.putProto(bucketAuthUsers, u.Name, u); err != nil {
			return err
		}
	}
	for _, r := range a.Roles {
		if err := w.putProto(bucketAuthRoles, r.Name, r); err != nil {
			return err
		}
	}
	return nil
}

func (w *Writer) putProto(bucket, k []byte, m proto.Message) error {
	v, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("etcdsnap: marshal %s: %w", bucket, err)
	}
	return w.put(bucket, k, v)
}

// Member is a cluster member as etcd stores it (membership.Member's JSON).
type Member struct {
	ID         uint64   `json:"id"`
	PeerURLs   []string `json:"peerURLs"`
	IsLearner  bool     `json:"isLearner,omitempty"`
	Name       string   `json:"name,omitempty"`
	ClientURLs []string `json:"clientURLs,omitempty"`
}

// PutMember writes a member.
func (w *Writer) PutMember(m Member) error {
	v, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("etcdsnap: marshal member: %w", err)
	}
	return w.put(bucketMembers, memberKey(m.ID), v)
}

// PutRemovedMember records that member id was removed.
func (w *Writer) PutRemovedMember(id uint64) error {
	return w.put(bucketMembersRemoved, memberKey(id), []byte("removed"))
}

// memberKey is etcd's key of a member: its ID in hex.
func memberKey(id uint64) []byte { return []byte(strconv.FormatUint(id, 16)) }

// PutAlarm writes a raised alarm.
func (w *Writer) PutAlarm(a *pb.AlarmMember) error {
	k, err := proto.Marshal(a)
	if err != nil {
		return fmt.Errorf("etcdsnap: marshal alarm: %w", err)
	}
	return w.put(bucketAlarm, k, nil)
}

// PutMeta writes the meta bucket (m.StorageVersion defaults to
// StorageVersion) with cs as the raft configuration, and the cluster
// version.
func (w *Writer) PutMeta(m Meta, cs *raftpb.ConfState) error {
	if m.StorageVersion == "" {
		m.StorageVersion = StorageVersion
	}
	csj, err := json.Marshal(cs)
	if err != nil {
		return fmt.Errorf("etcdsnap: marshal confState: %w", err)
	}
	recs := [][2][]byte{
		{keyConsistentIndex, binary.BigEndian.AppendUint64(nil, m.ConsistentIndex)},
		{keyTerm, binary.BigEndian.AppendUint64(nil, m.Term)},
		{keyConfState, csj},
		{keyStorageVersion, []byte(m.StorageVersion)},
	}
	if m.ScheduledCompact > 0 {
		recs = append(recs, [2][]byte{keyScheduledCompact, Revision{Main: m.ScheduledCompact}.Append(nil)})
	}
	if m.FinishedCompact > 0 {
		recs = append(recs, [2][]byte{keyFinishedCompact, Revision{Main: m.FinishedCompact}.Append(nil)})
	}
	for _, r := range recs {
		if err := w.put(bucketMeta, r[0], r[1]); err != nil {
			return err
		}
	}
	return w.put(bucketCluster, keyClusterVersion, []byte(StorageVersion))
}

// Close commits what is written and closes the database; the file is then
// a complete snapshot database (without the sha256 trailer, which the
// stream that sends it adds).
func (w *Writer) Close() error {
	err := w.tx.Commit()
	if cerr := w.db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("etcdsnap: close: %w", err)
	}
	return nil
}

// Abort discards what the open transaction wrote and closes the database.
func (w *Writer) Abort() {
	_ = w.tx.Rollback()
	_ = w.db.Close()
}
