package etcdapi

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/synod-db/synod/mvcc"
)

// snapshotStorageVersion is the storage version Snapshot reports, the one
// Status reports.
const snapshotStorageVersion = "3.7.0"

// errSnapshotShort: the staged snapshot ended before its announced size.
var errSnapshotShort = errors.New("etcdapi: snapshot shorter than announced")

// snapshotChunk is the size of one Snapshot message (etcd sends 32 KiB).
const snapshotChunk = 32 * 1024

// errGRPCDowngrade answers Downgrade: a newer synod upgrades a data
// directory's format in place and never converts it back; going back is by
// snapshot (docs/maintenance.md).
var errGRPCDowngrade = status.Error(codes.Unimplemented,
	"synod: Maintenance.Downgrade is not supported: a data directory upgraded by a newer release is not converted back; restore a snapshot with the older release instead")

// maintenanceService is etcd's Maintenance service.
type maintenanceService struct {
	pb.UnsafeMaintenanceServer // compile error if the service grows a method
	e                          *edge
}

// Status reports the member's state for `etcdctl endpoint status`. As in
// etcd, the header carries the store's current revision and DowngradeInfo is
// always present.
func (m *maintenanceService) Status(ctx context.Context, _ *pb.StatusRequest) (*pb.StatusResponse, error) {
	if err := m.e.requireUser(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	resp, err := m.e.b.Maintenance.Status(ctx)
	if err == nil && resp == nil {
		err = errUnexpectedResponse
	}
	if err != nil {
		return nil, toGRPCError(err)
	}
	resp.Header = m.e.fillHeader(&pb.ResponseHeader{})
	if resp.DowngradeInfo == nil {
		resp.DowngradeInfo = &pb.DowngradeInfo{}
	}
	return resp, nil
}

// HashKV hashes the keyspace up to r.Revision (0 = current), for checking
// that members agree. The header carries the store's current revision.
func (m *maintenanceService) HashKV(ctx context.Context, r *pb.HashKVRequest) (*pb.HashKVResponse, error) {
	if err := m.e.requireAdmin(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	hash, hashRev, compactRev, err := m.e.b.KV.HashKV(r.GetRevision())
	if err != nil {
		return nil, toGRPCError(err)
	}
	return &pb.HashKVResponse{
		Header:          m.e.fillHeader(&pb.ResponseHeader{}),
		Hash:            hash,
		HashRevision:    hashRev,
		CompactRevision: compactRev,
	}, nil
}

// Hash hashes the whole replicated state at the current revision (see
// mvcc.Store.Hash); the header carries that revision.
func (m *maintenanceService) Hash(ctx context.Context, _ *pb.HashRequest) (*pb.HashResponse, error) {
	if err := m.e.requireAdmin(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	hash, rev, err := m.e.b.KV.Hash()
	if err != nil {
		return nil, toGRPCError(err)
	}
	return &pb.HashResponse{Header: m.e.fillHeader(&pb.ResponseHeader{Revision: rev}), Hash: hash}, nil
}

// Alarm gets, raises or clears alarms through raft, as etcd does (a GET too
// goes through the log, so it sees every alarm raised before it).
func (m *maintenanceService) Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	check := m.e.requireAdmin // as etcd: listing needs a user, changing needs root
	if r.GetAction() == pb.AlarmRequest_GET {
		check = m.e.requireUser
	}
	if err := check(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	resp, err := m.e.b.Maintenance.Alarm(ctx, r)
	if err == nil && resp == nil {
		err = errUnexpectedResponse
	}
	if err != nil {
		return nil, toGRPCError(err)
	}
	resp.Header = m.e.fillHeader(resp.Header)
	return resp, nil
}

// Defragment reclaims disk space (see the member's Defragment: Pebble has
// nothing to defragment, so it compacts).
func (m *maintenanceService) Defragment(ctx context.Context, _ *pb.DefragmentRequest) (*pb.DefragmentResponse, error) {
	if err := m.e.requireAdmin(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	m.e.lg.Info("starting defragment (a full Pebble compaction: an LSM tree has no free pages to defragment)")
	if err := m.e.b.Maintenance.Defragment(ctx); err != nil {
		m.e.lg.Warn("failed to defragment", "err", err)
		return nil, toGRPCError(err)
	}
	return &pb.DefragmentResponse{}, nil // etcd's answer carries no header either
}

// Snapshot streams a point-in-time copy of the member's state as etcd does:
// chunks of the content with RemainingBytes counting down to 0 and Version
// set, then one last message holding the sha256 of the content. The content
// is the snapshot stream padded with zeros to a multiple of 512 bytes, so a
// saved file's size % 512 == 32 (what etcdctl checks).
func (m *maintenanceService) Snapshot(_ *pb.SnapshotRequest, srv grpc.ServerStreamingServer[pb.SnapshotResponse]) error {
	if err := m.e.requireAdmin(srv.Context()); err != nil {
		return toGRPCError(err)
	}
	ctx := srv.Context()
	body, n, err := m.e.b.Maintenance.Snapshot(ctx)
	if err != nil {
		return toGRPCError(err)
	}
	defer body.Close()
	total := n + mvcc.BackupPadding(n)
	content := io.MultiReader(io.LimitReader(body, n), io.LimitReader(zeros{}, total-n))
	h := sha256.New()
	sent := int64(0)
	for sent < total {
		buf := make([]byte, min(snapshotChunk, total-sent)) // Send may keep buf: never reuse it
		if _, err := io.ReadFull(content, buf); err != nil {
			return toGRPCError(errors.Join(errSnapshotShort, err))
		}
		sent += int64(len(buf))
		h.Write(buf)
		if err := srv.Send(&pb.SnapshotResponse{RemainingBytes: uint64(total - sent), Blob: buf, Version: m.version()}); err != nil {
			return toGRPCError(err)
		}
	}
	return toGRPCError(srv.Send(&pb.SnapshotResponse{Blob: h.Sum(nil), Version: m.version()}))
}

// version is the storage version a Snapshot message carries (etcd's, which
// `etcdctl snapshot save` prints).
func (m *maintenanceService) version() string { return snapshotStorageVersion }

// zeros reads as an endless run of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// MoveLeader hands leadership to r.TargetID. As in etcd only the leader may,
// the target must be a voting member, and it returns once the target leads.
func (m *maintenanceService) MoveLeader(ctx context.Context, r *pb.MoveLeaderRequest) (*pb.MoveLeaderResponse, error) {
	if err := m.e.requireAdmin(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	if err := m.e.b.Maintenance.MoveLeader(ctx, r.GetTargetID()); err != nil {
		return nil, toGRPCError(err)
	}
	return &pb.MoveLeaderResponse{}, nil // as etcd: no header
}

// Downgrade is not supported (codes.Unimplemented).
func (m *maintenanceService) Downgrade(ctx context.Context, _ *pb.DowngradeRequest) (*pb.DowngradeResponse, error) {
	if err := m.e.requireAdmin(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	return nil, errGRPCDowngrade
}
