package alarm

import pb "go.etcd.io/etcd/api/v3/etcdserverpb"

// ActivateRequest is the raft request raising alarm t for member id: what
// a member's duties propose (NOSPACE when the quota or the disk runs out,
// CORRUPT when a hash check finds a mismatch), and the simulation alike.
func ActivateRequest(id uint64, t pb.AlarmType) *pb.InternalRaftRequest {
	return &pb.InternalRaftRequest{Alarm: &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: id, Alarm: t}}
}
