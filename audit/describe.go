package audit

import (
	"strconv"
	"strings"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// MaxOps is the most Txn writes one entry lists; the rest are counted in
// Entry.OpsTruncated. It bounds a line whatever --max-txn-ops is.
const MaxOps = 64

// mutating are the RPCs that are always audited, whatever their outcome.
// A Txn is audited when it holds a write; an Alarm when it is not a GET.
var mutating = map[string]bool{
	"/etcdserverpb.KV/Put":                    true,
	"/etcdserverpb.KV/DeleteRange":            true,
	"/etcdserverpb.KV/Compact":                true,
	"/etcdserverpb.Lease/LeaseGrant":          true,
	"/etcdserverpb.Lease/LeaseRevoke":         true,
	"/etcdserverpb.Cluster/MemberAdd":         true,
	"/etcdserverpb.Cluster/MemberRemove":      true,
	"/etcdserverpb.Cluster/MemberUpdate":      true,
	"/etcdserverpb.Cluster/MemberPromote":     true,
	"/etcdserverpb.Maintenance/Defragment":    true,
	"/etcdserverpb.Maintenance/Snapshot":      true,
	"/etcdserverpb.Maintenance/MoveLeader":    true,
	"/etcdserverpb.Maintenance/Downgrade":     true,
	"/v3lockpb.Lock/Lock":                     true,
	"/v3lockpb.Lock/Unlock":                   true,
	"/v3electionpb.Election/Campaign":         true,
	"/v3electionpb.Election/Proclaim":         true,
	"/v3electionpb.Election/Resign":           true,
	"/etcdserverpb.Maintenance/Alarm":         true, // refined by the request
	"/etcdserverpb.KV/Txn":                    true, // refined by the request
	"/etcdserverpb.Auth/Authenticate":         true,
	"/etcdserverpb.Auth/AuthEnable":           true,
	"/etcdserverpb.Auth/AuthDisable":          true,
	"/etcdserverpb.Auth/AuthStatus":           true,
	"/etcdserverpb.Auth/UserAdd":              true,
	"/etcdserverpb.Auth/UserGet":              true,
	"/etcdserverpb.Auth/UserList":             true,
	"/etcdserverpb.Auth/UserDelete":           true,
	"/etcdserverpb.Auth/UserChangePassword":   true,
	"/etcdserverpb.Auth/UserGrantRole":        true,
	"/etcdserverpb.Auth/UserRevokeRole":       true,
	"/etcdserverpb.Auth/RoleAdd":              true,
	"/etcdserverpb.Auth/RoleGet":              true,
	"/etcdserverpb.Auth/RoleList":             true,
	"/etcdserverpb.Auth/RoleDelete":           true,
	"/etcdserverpb.Auth/RoleGrantPermission":  true,
	"/etcdserverpb.Auth/RoleRevokePermission": true,
}

// Audited reports whether an RPC with this outcome is written to the audit
// log: every mutating request (whatever its outcome) and every request
// whose answer is an authentication or authorization decision. req may be
// nil for a stream that failed before its first message.
func Audited(method string, req any, err error) bool {
	if AuthDecision(err) {
		return true
	}
	if !mutating[method] {
		return false
	}
	switch r := req.(type) {
	case *pb.TxnRequest:
		return hasWrite(r)
	case *pb.AlarmRequest:
		return r.GetAction() != pb.AlarmRequest_GET
	}
	return true
}

// authErrors are etcd's answers that report an authentication or
// authorization decision (compared by code and message).
var authErrors = []error{
	rpctypes.ErrGRPCPermissionDenied, rpctypes.ErrGRPCInvalidAuthToken, rpctypes.ErrGRPCAuthFailed,
	rpctypes.ErrGRPCUserEmpty, rpctypes.ErrGRPCAuthOldRevision, rpctypes.ErrGRPCInvalidAuthMgmt,
	rpctypes.ErrGRPCAuthNotEnabled,
}

// AuthDecision reports whether err refuses a request for want of
// authentication or permission: codes.PermissionDenied,
// codes.Unauthenticated, or one of etcd's auth errors (an invalid token,
// failed authentication, ...).
func AuthDecision(err error) bool {
	s, ok := status.FromError(err)
	if !ok || err == nil {
		return false
	}
	if s.Code() == codes.PermissionDenied || s.Code() == codes.Unauthenticated {
		return true
	}
	for _, a := range authErrors {
		as, _ := status.FromError(a)
		if s.Code() == as.Code() && s.Message() == as.Message() {
			return true
		}
	}
	return false
}

// Describe fills e's request fields (RPC, key range, txn writes, lease,
// member, names, detail, revision) from an RPC's method, request and
// response (either may be nil). It never records values or passwords.
func Describe(e *Entry, method string, req, resp any) {
	e.RPC = method
	describeKeys(e, req)
	describeNames(e, req)
	describeOther(e, req, resp)
	if h, ok := resp.(interface{ GetHeader() *pb.ResponseHeader }); ok && h.GetHeader() != nil {
		e.Revision = h.GetHeader().GetRevision()
	}
}

// describeKeys sets the key range of requests that have one.
func describeKeys(e *Entry, req any) {
	switch r := req.(type) {
	case *pb.PutRequest:
		e.Key, e.Lease = r.GetKey(), r.GetLease()
	case *pb.TxnRequest:
		return // its keys are in Ops
	case interface{ GetPerm() *authpb.Permission }:
		e.Key, e.RangeEnd = r.GetPerm().GetKey(), r.GetPerm().GetRangeEnd()
		e.Detail = r.GetPerm().GetPermType().String()
	case interface {
		GetKey() []byte
		GetRangeEnd() []byte
	}:
		e.Key, e.RangeEnd = r.GetKey(), r.GetRangeEnd()
	case interface{ GetKey() []byte }:
		e.Key = r.GetKey()
	case interface{ GetName() []byte }: // Lock, Campaign
		e.Key = r.GetName()
	case interface {
		GetLeader() *v3electionpb.LeaderKey
	}: // Proclaim, Resign
		e.Key = r.GetLeader().GetKey()
	}
}

// describeNames sets the user and role names of Auth requests.
func describeNames(e *Entry, req any) {
	if r, ok := req.(interface{ GetName() string }); ok {
		e.Name = r.GetName()
	}
	if r, ok := req.(interface{ GetUser() string }); ok {
		e.Name = r.GetUser()
	}
	if r, ok := req.(interface{ GetRole() string }); ok {
		e.Role = r.GetRole()
	}
}

// describeOther sets the fields of leases, members, alarms, compactions
// and transactions.
func describeOther(e *Entry, req, resp any) {
	switch r := req.(type) {
	case *pb.TxnRequest:
		tr, _ := resp.(*pb.TxnResponse)
		e.Ops, e.OpsTruncated = txnWrites(r, tr)
	case *pb.CompactionRequest:
		e.Detail = "revision=" + strconv.FormatInt(r.GetRevision(), 10)
		if r.GetPhysical() {
			e.Detail += " physical"
		}
	case *pb.LeaseGrantRequest:
		e.Lease = r.GetID()
		if gr, ok := resp.(*pb.LeaseGrantResponse); ok && gr.GetID() != 0 {
			e.Lease = gr.GetID()
		}
		e.Detail = "ttl=" + strconv.FormatInt(r.GetTTL(), 10)
	case *pb.LeaseRevokeRequest:
		e.Lease = r.GetID()
	case *pb.MemberAddRequest:
		if ar, ok := resp.(*pb.MemberAddResponse); ok {
			e.Member = ar.GetMember().GetID()
		}
		e.Detail = "peer_urls=" + strings.Join(r.GetPeerURLs(), ",")
		if r.GetIsLearner() {
			e.Detail += " learner"
		}
	case interface{ GetID() uint64 }: // MemberRemove, MemberUpdate, MemberPromote
		e.Member = r.GetID()
	case *pb.MoveLeaderRequest:
		e.Member = r.GetTargetID()
	case *pb.AlarmRequest:
		e.Member = r.GetMemberID()
		e.Detail = r.GetAction().String() + " " + r.GetAlarm().String()
	}
}

// hasWrite reports whether any branch of t, nested txns included, writes.
func hasWrite(t *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{t.GetSuccess(), t.GetFailure()} {
		for _, op := range ops {
			switch {
			case op.GetRequestPut() != nil, op.GetRequestDeleteRange() != nil:
				return true
			case op.GetRequestTxn() != nil && hasWrite(op.GetRequestTxn()):
				return true
			}
		}
	}
	return false
}

// txnWrites lists the writes of t: those of the branch that ran when resp
// says which (nested txns alike), else those of both branches. At most
// MaxOps are listed; the second result counts the rest.
func txnWrites(t *pb.TxnRequest, resp *pb.TxnResponse) ([]Op, int) {
	var out []Op
	extra := 0
	var walk func(t *pb.TxnRequest, resp *pb.TxnResponse)
	walk = func(t *pb.TxnRequest, resp *pb.TxnResponse) {
		branches := [][]*pb.RequestOp{t.GetSuccess(), t.GetFailure()}
		if resp != nil {
			branches = branches[:1]
			if !resp.GetSucceeded() {
				branches[0] = t.GetFailure()
			}
		}
		for _, ops := range branches {
			for i, op := range ops {
				var o Op
				switch {
				case op.GetRequestPut() != nil:
					o = Op{Type: "put", Key: op.GetRequestPut().GetKey()}
				case op.GetRequestDeleteRange() != nil:
					dr := op.GetRequestDeleteRange()
					o = Op{Type: "delete_range", Key: dr.GetKey(), RangeEnd: dr.GetRangeEnd()}
				case op.GetRequestTxn() != nil:
					var sub *pb.TxnResponse
					if resp != nil && i < len(resp.GetResponses()) {
						sub = resp.GetResponses()[i].GetResponseTxn()
					}
					walk(op.GetRequestTxn(), sub)
					continue
				default:
					continue
				}
				if len(out) < MaxOps {
					out = append(out, o)
				} else {
					extra++
				}
			}
		}
	}
	walk(t, resp)
	return out, extra
}

// WatchRefusal reports whether a watch's cancel reason is one of etcd's
// auth refusals (etcd cancels such a watch on the stream with the gRPC
// error's text, rather than failing the RPC), and returns that error.
func WatchRefusal(cancelReason string) (error, bool) {
	for _, a := range authErrors {
		if cancelReason == a.Error() {
			return a, true
		}
	}
	return nil, false
}
