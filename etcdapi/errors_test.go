package etcdapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

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

// grpcCases lists every error the API edge maps, with the gRPC error etcd
// sends for it and the error clientv3 turns that into (nil where clientv3
// has no rpctypes value for it).
var grpcCases = []struct {
	name   string
	err    error
	grpc   error
	client error
}{
	{"compacted", mvcc.ErrCompacted, rpctypes.ErrGRPCCompacted, rpctypes.ErrCompacted},
	{"future rev", mvcc.ErrFutureRev, rpctypes.ErrGRPCFutureRev, rpctypes.ErrFutureRev},
	{"key not found", mvcc.ErrKeyNotFound, rpctypes.ErrGRPCKeyNotFound, rpctypes.ErrKeyNotFound},
	{"lease not found", mvcc.ErrLeaseNotFound, rpctypes.ErrGRPCLeaseNotFound, rpctypes.ErrLeaseNotFound},
	{"lessor: lease not found", lease.ErrNotFound, rpctypes.ErrGRPCLeaseNotFound, rpctypes.ErrLeaseNotFound},
	{"lease exists", lease.ErrExists, rpctypes.ErrGRPCLeaseExist, rpctypes.ErrLeaseExist},
	{"lease TTL too large", lease.ErrTTLTooLarge, rpctypes.ErrGRPCLeaseTTLTooLarge, rpctypes.ErrLeaseTTLTooLarge},
	{"corrupt", record.ErrCorrupt, rpctypes.ErrGRPCCorrupt, rpctypes.ErrCorrupt},
	{"store closed", mvcc.ErrClosed, rpctypes.ErrGRPCStopped, rpctypes.ErrStopped},
	{"no leader", raftnode.ErrNoLeader, rpctypes.ErrGRPCNoLeader, rpctypes.ErrNoLeader},
	{"timeout", raftnode.ErrTimeout, rpctypes.ErrGRPCTimeout, rpctypes.ErrTimeout},
	{"leader lost", raftnode.ErrLeaderLost, rpctypes.ErrGRPCTimeoutDueToLeaderFail, rpctypes.ErrTimeoutDueToLeaderFail},
	{"leader changed", raftnode.ErrLeaderChanged, rpctypes.ErrGRPCLeaderChanged, rpctypes.ErrLeaderChanged},
	{"stopped", raftnode.ErrStopped, rpctypes.ErrGRPCStopped, rpctypes.ErrStopped},
	{"too many requests", raftnode.ErrTooManyRequests, rpctypes.ErrGRPCRequestTooManyRequests, rpctypes.ErrTooManyRequests},
	{"no space", alarm.ErrNoSpace, rpctypes.ErrGRPCNoSpace, rpctypes.ErrNoSpace},
	{"corrupt cluster", alarm.ErrCorrupt, rpctypes.ErrGRPCCorrupt, rpctypes.ErrCorrupt},
	{"not leader", raftnode.ErrNotLeader, rpctypes.ErrGRPCNotLeader, rpctypes.ErrNotLeader},
	{"bad transferee", raftnode.ErrBadTransferee, rpctypes.ErrGRPCBadLeaderTransferee, rpctypes.ErrBadLeaderTransferee},
	{"transfer timeout", raftnode.ErrTransferTimeout, errGRPCTransferTimeout, errGRPCTransferTimeout},
	{"request too large", errRequestTooLarge, rpctypes.ErrGRPCRequestTooLarge, rpctypes.ErrRequestTooLarge},

	{"conf change pending", raftnode.ErrConfChangePending, errGRPCConfChangePending, errGRPCConfChangePending},
	{"member ID removed", membership.ErrIDRemoved, rpctypes.ErrGRPCMemberNotFound, rpctypes.ErrMemberNotFound},
	{"member not found", membership.ErrIDNotFound, rpctypes.ErrGRPCMemberNotFound, rpctypes.ErrMemberNotFound},
	{"member exists", membership.ErrIDExists, rpctypes.ErrGRPCMemberExist, rpctypes.ErrMemberExist},
	{"peer URL exists", membership.ErrPeerURLExists, rpctypes.ErrGRPCPeerURLExist, rpctypes.ErrPeerURLExist},
	{"not a learner", membership.ErrMemberNotLearner, rpctypes.ErrGRPCMemberNotLearner, rpctypes.ErrMemberNotLearner},
	{"too many learners", membership.ErrTooManyLearners, rpctypes.ErrGRPCTooManyLearners, rpctypes.ErrTooManyLearners},
	{"not enough started", membership.ErrNotEnoughStarted, rpctypes.ErrGRPCMemberNotEnoughStarted, rpctypes.ErrMemberNotEnoughStarted},
	{"learner not ready", membership.ErrLearnerNotReady, rpctypes.ErrGRPCLearnerNotReady, rpctypes.ErrMemberLearnerNotReady},
	{"unhealthy", membership.ErrUnhealthy, rpctypes.ErrGRPCUnhealthy, rpctypes.ErrUnhealthy},
	{"bad peer URLs", membership.ErrBadPeerURLs, rpctypes.ErrGRPCMemberBadURLs, rpctypes.ErrMemberBadURLs},

	{"root user missing", auth.ErrRootUserNotExist, rpctypes.ErrGRPCRootUserNotExist, rpctypes.ErrRootUserNotExist},
	{"root role missing", auth.ErrRootRoleNotExist, rpctypes.ErrGRPCRootRoleNotExist, rpctypes.ErrRootRoleNotExist},
	{"user exists", auth.ErrUserAlreadyExist, rpctypes.ErrGRPCUserAlreadyExist, rpctypes.ErrUserAlreadyExist},
	{"user empty", auth.ErrUserEmpty, rpctypes.ErrGRPCUserEmpty, rpctypes.ErrUserEmpty},
	{"user not found", auth.ErrUserNotFound, rpctypes.ErrGRPCUserNotFound, rpctypes.ErrUserNotFound},
	{"role exists", auth.ErrRoleAlreadyExist, rpctypes.ErrGRPCRoleAlreadyExist, rpctypes.ErrRoleAlreadyExist},
	{"role not found", auth.ErrRoleNotFound, rpctypes.ErrGRPCRoleNotFound, rpctypes.ErrRoleNotFound},
	{"role empty", auth.ErrRoleEmpty, rpctypes.ErrGRPCRoleEmpty, rpctypes.ErrRoleEmpty},
	{"auth failed", auth.ErrAuthFailed, rpctypes.ErrGRPCAuthFailed, rpctypes.ErrAuthFailed},
	{"permission not given", auth.ErrPermissionNotGiven, rpctypes.ErrGRPCPermissionNotGiven, rpctypes.ErrGRPCPermissionNotGiven},
	{"permission denied", auth.ErrPermissionDenied, rpctypes.ErrGRPCPermissionDenied, rpctypes.ErrPermissionDenied},
	{"role not granted", auth.ErrRoleNotGranted, rpctypes.ErrGRPCRoleNotGranted, rpctypes.ErrRoleNotGranted},
	{"permission not granted", auth.ErrPermissionNotGranted, rpctypes.ErrGRPCPermissionNotGranted, rpctypes.ErrPermissionNotGranted},
	{"auth not enabled", auth.ErrAuthNotEnabled, rpctypes.ErrGRPCAuthNotEnabled, rpctypes.ErrAuthNotEnabled},
	{"invalid token", auth.ErrInvalidAuthToken, rpctypes.ErrGRPCInvalidAuthToken, rpctypes.ErrInvalidAuthToken},
	{"invalid auth mgmt", auth.ErrInvalidAuthMgmt, rpctypes.ErrGRPCInvalidAuthMgmt, rpctypes.ErrInvalidAuthMgmt},
	{"old auth revision", auth.ErrAuthOldRevision, rpctypes.ErrGRPCAuthOldRevision, rpctypes.ErrAuthOldRevision},
}

func TestToGRPCErrorTable(t *testing.T) {
	for _, tc := range grpcCases {
		if got := toGRPCError(tc.err); got != tc.grpc {
			t.Errorf("%s: toGRPCError(%v) = %v, want %v", tc.name, tc.err, got, tc.grpc)
		}
		wrapped := fmt.Errorf("somewhere deep: %w", tc.err)
		if got := toGRPCError(wrapped); got != tc.grpc {
			t.Errorf("%s: wrapped: got %v, want %v", tc.name, got, tc.grpc)
		}
		// What clientv3 does with the status it receives.
		if got := rpctypes.Error(toGRPCError(tc.err)); got != tc.client {
			t.Errorf("%s: clientv3 sees %v, want %v", tc.name, got, tc.client)
		}
	}
}

func TestToGRPCErrorTableIsComplete(t *testing.T) {
	// Every table entry must be covered by grpcCases, so a new entry gets a test.
	covered := map[error]bool{}
	for _, tc := range grpcCases {
		covered[tc.err] = true
	}
	for _, e := range grpcErrors {
		switch e.err {
		case context.Canceled, context.DeadlineExceeded, errUnexpectedResponse:
			continue // TestToGRPCErrorOthers
		}
		if !covered[e.err] {
			t.Errorf("table entry %v has no test case", e.err)
		}
	}
}

func TestToGRPCErrorOthers(t *testing.T) {
	if err := toGRPCError(nil); err != nil {
		t.Errorf("nil: got %v", err)
	}
	for _, tc := range []struct {
		name string
		err  error
		code codes.Code
		msg  string
	}{
		{"canceled", context.Canceled, codes.Canceled, "context canceled"},
		{"deadline", context.DeadlineExceeded, codes.DeadlineExceeded, "context deadline exceeded"},
		{"wrapped deadline", fmt.Errorf("read index: %w", context.DeadlineExceeded), codes.DeadlineExceeded, "context deadline exceeded"},
		{"unknown", errors.New("disk on fire"), codes.Unknown, "disk on fire"},
		{"io.EOF", io.EOF, codes.Unknown, "EOF"},
		{"unexpected response", errUnexpectedResponse, codes.Internal, "synod: internal error: unexpected response from the member"},
		{"status passes through", rpctypes.ErrGRPCEmptyKey, codes.InvalidArgument, "etcdserver: key is not provided"},
		{"stream send failure", status.Error(codes.Unavailable, "transport is closing"), codes.Unavailable, "transport is closing"},
	} {
		s := status.Convert(toGRPCError(tc.err))
		if s.Code() != tc.code || s.Message() != tc.msg {
			t.Errorf("%s: got %v %q, want %v %q", tc.name, s.Code(), s.Message(), tc.code, tc.msg)
		}
	}
	// A sentinel wins over a context error it wraps: raft's timeout is etcd's.
	both := fmt.Errorf("%w: %w", raftnode.ErrTimeout, context.DeadlineExceeded)
	if got := toGRPCError(both); got != rpctypes.ErrGRPCTimeout {
		t.Errorf("timeout wrapping a deadline: got %v", got)
	}
}
