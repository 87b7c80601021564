package etcdapi

import (
	"context"
	"errors"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/synod-db/synod/alarm"
	"github.com/synod-db/synod/auth"
	"github.com/synod-db/synod/lease"
	"github.com/synod-db/synod/membership"
	"github.com/synod-db/synod/mvcc"
	"github.com/synod-db/synod/raftnode"
	"github.com/synod-db/synod/record"
)

// Errors the API edge itself raises below validation. They are mapped by the
// same table as every other error.
var (
	// errRequestTooLarge: a write is bigger than MaxRequestBytes once wrapped
	// in an InternalRaftRequest (etcd's errors.ErrRequestTooLarge).
	errRequestTooLarge = errors.New("etcdapi: request is too large")
	// errUnexpectedResponse: the member answered a request with the wrong
	// message type, or with none. It is a synod bug, never a client error.
	errUnexpectedResponse = errors.New("etcdapi: unexpected response from the member")
)

// gRPC errors synod defines itself, where etcd creates them inline.
var (
	// errGRPCStreamSort is etcd 3.7's answer to a RangeStream with a
	// non-default sort (v3rpc.checkRangeStreamRequest).
	errGRPCStreamSort = status.Error(codes.Unimplemented, "RangeStream does not support custom sort orders")
	// errGRPCStreamFilters is etcd 3.7's answer to a RangeStream with
	// min/max create/mod revision filters.
	errGRPCStreamFilters = status.Error(codes.Unimplemented, "RangeStream does not support revision filters")
	// errGRPCTransferTimeout is what etcd sends when MoveLeader's deadline
	// passes: its ErrTimeoutLeaderTransfer, unmapped, as codes.Unknown.
	errGRPCTransferTimeout = status.Error(codes.Unknown, "etcdserver: request timed out, leader transfer took too long")
	// errGRPCPanic is what a client sees when a handler panicked.
	errGRPCPanic = status.Error(codes.Internal, "synod: internal error while serving the request")
	// errGRPCConfChangePending: the leader dropped a membership change
	// because another is not applied yet. etcd lets such a request time
	// out; synod says so at once (FailedPrecondition: retry later).
	errGRPCConfChangePending = status.Error(codes.FailedPrecondition, "etcdserver: another membership change is in progress; retry")
	// errGRPCInternal is what a client sees for errUnexpectedResponse.
	errGRPCInternal = status.Error(codes.Internal, "synod: internal error: unexpected response from the member")
)

// grpcErrors is the one table from synod's errors to the gRPC status a client
// sees. Entries are matched with errors.Is in order, so a wrapped sentinel
// maps like the sentinel itself and the first match wins.
//
// It mirrors etcd's toGRPCErrorMap (server/etcdserver/api/v3rpc/util.go) with
// one deliberate difference: etcd maps its ErrTooManyRequests to
// rpctypes.ErrTooManyRequests, a client-side error value that gRPC sends as
// codes.Unknown; synod sends rpctypes.ErrGRPCRequestTooManyRequests
// (codes.ResourceExhausted, same message), which clientv3 turns into the
// identical rpctypes.ErrTooManyRequests.
var grpcErrors = []struct {
	err  error
	grpc error
}{
	{mvcc.ErrCompacted, rpctypes.ErrGRPCCompacted},
	{mvcc.ErrFutureRev, rpctypes.ErrGRPCFutureRev},
	{mvcc.ErrKeyNotFound, rpctypes.ErrGRPCKeyNotFound},
	{mvcc.ErrLeaseNotFound, rpctypes.ErrGRPCLeaseNotFound},
	{lease.ErrNotFound, rpctypes.ErrGRPCLeaseNotFound},
	{lease.ErrExists, rpctypes.ErrGRPCLeaseExist},
	{lease.ErrTTLTooLarge, rpctypes.ErrGRPCLeaseTTLTooLarge},
	{record.ErrCorrupt, rpctypes.ErrGRPCCorrupt},
	{mvcc.ErrClosed, rpctypes.ErrGRPCStopped}, // a read racing the member's shutdown

	{alarm.ErrNoSpace, rpctypes.ErrGRPCNoSpace},
	{alarm.ErrCorrupt, rpctypes.ErrGRPCCorrupt},

	// Auth, as etcd maps them. auth.ErrNoPasswordUser is, as in etcd, not
	// in the table: codes.Unknown with its message.
	{auth.ErrRootUserNotExist, rpctypes.ErrGRPCRootUserNotExist},
	{auth.ErrRootRoleNotExist, rpctypes.ErrGRPCRootRoleNotExist},
	{auth.ErrUserAlreadyExist, rpctypes.ErrGRPCUserAlreadyExist},
	{auth.ErrUserEmpty, rpctypes.ErrGRPCUserEmpty},
	{auth.ErrUserNotFound, rpctypes.ErrGRPCUserNotFound},
	{auth.ErrRoleAlreadyExist, rpctypes.ErrGRPCRoleAlreadyExist},
	{auth.ErrRoleNotFound, rpctypes.ErrGRPCRoleNotFound},
	{auth.ErrRoleEmpty, rpctypes.ErrGRPCRoleEmpty},
	{auth.ErrAuthFailed, rpctypes.ErrGRPCAuthFailed},
	{auth.ErrPermissionNotGiven, rpctypes.ErrGRPCPermissionNotGiven},
	{auth.ErrPermissionDenied, rpctypes.ErrGRPCPermissionDenied},
	{auth.ErrRoleNotGranted, rpctypes.ErrGRPCRoleNotGranted},
	{auth.ErrPermissionNotGranted, rpctypes.ErrGRPCPermissionNotGranted},
	{auth.ErrAuthNotEnabled, rpctypes.ErrGRPCAuthNotEnabled},
	{auth.ErrInvalidAuthToken, rpctypes.ErrGRPCInvalidAuthToken},
	{auth.ErrInvalidAuthMgmt, rpctypes.ErrGRPCInvalidAuthMgmt},
	{auth.ErrAuthOldRevision, rpctypes.ErrGRPCAuthOldRevision},

	{raftnode.ErrNoLeader, rpctypes.ErrGRPCNoLeader},
	{raftnode.ErrNotLeader, rpctypes.ErrGRPCNotLeader},
	{raftnode.ErrBadTransferee, rpctypes.ErrGRPCBadLeaderTransferee},
	// etcd has no gRPC status for its ErrTimeoutLeaderTransfer: codes.Unknown with its text.
	{raftnode.ErrTransferTimeout, errGRPCTransferTimeout},
	{raftnode.ErrTimeout, rpctypes.ErrGRPCTimeout},
	{raftnode.ErrLeaderLost, rpctypes.ErrGRPCTimeoutDueToLeaderFail},
	{raftnode.ErrLeaderChanged, rpctypes.ErrGRPCLeaderChanged},
	{raftnode.ErrStopped, rpctypes.ErrGRPCStopped},
	{raftnode.ErrTooManyRequests, rpctypes.ErrGRPCRequestTooManyRequests},

	{raftnode.ErrConfChangePending, errGRPCConfChangePending},
	// Membership changes, as etcd maps them (ID removed reads as not found).
	{membership.ErrIDRemoved, rpctypes.ErrGRPCMemberNotFound},
	{membership.ErrIDNotFound, rpctypes.ErrGRPCMemberNotFound},
	{membership.ErrIDExists, rpctypes.ErrGRPCMemberExist},
	{membership.ErrPeerURLExists, rpctypes.ErrGRPCPeerURLExist},
	{membership.ErrMemberNotLearner, rpctypes.ErrGRPCMemberNotLearner},
	{membership.ErrTooManyLearners, rpctypes.ErrGRPCTooManyLearners},
	{membership.ErrNotEnoughStarted, rpctypes.ErrGRPCMemberNotEnoughStarted},
	{membership.ErrLearnerNotReady, rpctypes.ErrGRPCLearnerNotReady},
	{membership.ErrUnhealthy, rpctypes.ErrGRPCUnhealthy},
	{membership.ErrBadPeerURLs, rpctypes.ErrGRPCMemberBadURLs},

	{errRequestTooLarge, rpctypes.ErrGRPCRequestTooLarge},
	{errUnexpectedResponse, errGRPCInternal},

	// What gRPC itself would send for a context error (status.FromContextError),
	// which is what etcd's togRPCError leaves to it.
	{context.Canceled, status.Error(codes.Canceled, context.Canceled.Error())},
	{context.DeadlineExceeded, status.Error(codes.DeadlineExceeded, context.DeadlineExceeded.Error())},
}

// toGRPCError maps err to the gRPC status error a client sees. It is the only
// place errors are mapped: nil stays nil, a table entry maps as listed, an
// error that already is a gRPC status (validation, a failed stream Send)
// passes through, and anything else becomes codes.Unknown with its message.
func toGRPCError(err error) error {
	if err == nil {
		return nil
	}
	for _, e := range grpcErrors {
		if errors.Is(err, e.err) {
			return e.grpc
		}
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	// An etcd error that came back through a client of this member (the
	// Lock and Election services) keeps its code and message.
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		return status.Error(ee.Code(), ee.Error())
	}
	return status.Error(codes.Unknown, err.Error())
}

// watchCancelReason is the cancel reason of a watch create refused by an
// auth check, as etcd's isWatchPermitted words it ("" for nil): the text of
// the gRPC status, which clientv3 recognises to re-authenticate and retry
// (invalid token, old revision).
func watchCancelReason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, auth.ErrInvalidAuthToken):
		return rpctypes.ErrGRPCInvalidAuthToken.Error()
	case errors.Is(err, auth.ErrAuthOldRevision):
		return rpctypes.ErrGRPCAuthOldRevision.Error()
	case errors.Is(err, auth.ErrUserEmpty):
		return rpctypes.ErrGRPCUserEmpty.Error()
	}
	return rpctypes.ErrGRPCPermissionDenied.Error()
}
