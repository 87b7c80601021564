package etcdapi

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
)

// maintenanceService is etcd's Maintenance service. Status, HashKV and Alarm
// (listing) work; the rest answer codes.Unimplemented until synod has them.
type maintenanceService struct {
	pb.UnsafeMaintenanceServer // compile error if the service grows a method
	e                          *edge
}

// Status reports the member's state for `etcdctl endpoint status`. As in
// etcd, the header carries the store's current revision and DowngradeInfo is
// always present.
func (m *maintenanceService) Status(ctx context.Context, _ *pb.StatusRequest) (*pb.StatusResponse, error) {
	resp, err := m.e.srv.Status(ctx)
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
func (m *maintenanceService) HashKV(_ context.Context, r *pb.HashKVRequest) (*pb.HashKVResponse, error) {
	hash, hashRev, compactRev, err := m.e.store().HashKV(r.GetRevision())
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

// Alarm lists the active alarms, of which synod has none yet: GET and
// DEACTIVATE answer an empty list (etcd answers a DEACTIVATE of an alarm that
// is not raised the same way). ACTIVATE is not implemented yet, rather than
// acknowledging an alarm nobody would record.
func (m *maintenanceService) Alarm(_ context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	if r.GetAction() == pb.AlarmRequest_ACTIVATE {
		return nil, unimplemented("Maintenance.Alarm(ACTIVATE)")
	}
	return &pb.AlarmResponse{Header: m.e.fillHeader(&pb.ResponseHeader{})}, nil
}

// Defragment is not implemented yet.
func (m *maintenanceService) Defragment(context.Context, *pb.DefragmentRequest) (*pb.DefragmentResponse, error) {
	return nil, unimplemented("Maintenance.Defragment")
}

// Hash (deprecated in etcd in favour of HashKV) is not implemented yet.
func (m *maintenanceService) Hash(context.Context, *pb.HashRequest) (*pb.HashResponse, error) {
	return nil, unimplemented("Maintenance.Hash")
}

// Snapshot is not implemented yet.
func (m *maintenanceService) Snapshot(*pb.SnapshotRequest, grpc.ServerStreamingServer[pb.SnapshotResponse]) error {
	return unimplemented("Maintenance.Snapshot")
}

// MoveLeader is not implemented yet.
func (m *maintenanceService) MoveLeader(context.Context, *pb.MoveLeaderRequest) (*pb.MoveLeaderResponse, error) {
	return nil, unimplemented("Maintenance.MoveLeader")
}

// Downgrade is not implemented yet.
func (m *maintenanceService) Downgrade(context.Context, *pb.DowngradeRequest) (*pb.DowngradeResponse, error) {
	return nil, unimplemented("Maintenance.Downgrade")
}
