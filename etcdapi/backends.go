package etcdapi

import (
	"context"
	"fmt"
	"io"
	"time"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/auth"
	"github.com/synod-db/synod/lease"
	"github.com/synod-db/synod/watch"
)

// Backends are the parts of a member the API edge serves, one small
// interface per concern. Every field is required: the member assigns each
// one in one place, so a backend it lacks is a compile error there, and
// NewGRPCServer refuses a Backends with a nil field. Every method is safe
// for concurrent use.
type Backends struct {
	// Raft replicates writes and orders linearizable reads.
	Raft Raft
	// KV is the member's keyspace, read locally.
	KV KV
	// Member names the member in response headers and bounds its requests.
	Member Member
	// Quota gates writes on the storage quota and the raised alarms.
	Quota Quota
	// Cluster lists and changes the membership.
	Cluster Cluster
	// Maintenance serves the Maintenance service.
	Maintenance Maintenance
	// Leases is the member's local view of every lease.
	Leases Leases
	// LeaseGrants chooses what a lease grant proposes.
	LeaseGrants LeaseGrants
	// Watch is the member's watch hub.
	Watch Watch
	// Leader reports the member's leader, for require-leader streams.
	Leader Leader
	// Auth is the member's replicated auth state.
	Auth AuthState
	// AuthOptions are the member's auth flags.
	AuthOptions AuthOptions
}

// Raft is how the edge reaches consensus.
type Raft interface {
	// Propose replicates req through raft (it assigns req.Header.ID) and returns the response produced by applying it on this member: *PutResponse, *DeleteRangeResponse, *TxnResponse or *CompactionResponse with Header.Revision set. Errors: raftnode.ErrNoLeader / ErrTimeout / ErrStopped / ErrTooManyRequests, ctx errors, or the request-level mvcc errors (ErrCompacted, ErrFutureRev, ErrKeyNotFound, ErrLeaseNotFound). For a physical compaction it returns only once the deletion finished.
	Propose(ctx context.Context, req *pb.InternalRaftRequest) (proto.Message, error)
	// ReadIndex returns once this member has applied everything that was committed when it was called (a linearizable read barrier, batched across callers). Errors: raftnode.ErrNoLeader, ErrTimeout, ErrLeaderChanged, ErrStopped, ctx errors.
	ReadIndex(ctx context.Context) error
}

// KV is the part of the member's mvcc store (*mvcc.Store) the edge reads
// through. Tests interpose on it (to write between the chunks of a
// RangeStream, for example).
type KV interface {
	// Range reads keys; only Header.Revision of the response header is set.
	Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error)
	// ReadTxn evaluates a txn whose ops are all ranges.
	ReadTxn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error)
	// Rev is the store's current revision.
	Rev() int64
	// HashKV hashes the keyspace up to rev (0 = current revision).
	HashKV(rev int64) (hash uint32, hashRev int64, compactRev int64, err error)
	// Hash hashes the whole replicated state at the current revision.
	Hash() (hash uint32, rev int64, err error)
}

// Member is what the edge knows of the member itself.
type Member interface {
	// Header returns a new header with ClusterId, MemberId and RaftTerm set; Revision is 0 for the caller to fill.
	Header() *pb.ResponseHeader
	// Limits of this member (from --max-txn-ops, --max-request-bytes).
	Limits() Limits
}

// Quota gates writes before they are proposed.
type Quota interface {
	// CheckQuota returns alarm.ErrNoSpace (after raising the NOSPACE alarm
	// through raft) if a write of cost bytes (alarm.CostPut, CostTxn,
	// LeaseOverhead) would take the database over its quota; cost 0 always passes.
	CheckQuota(ctx context.Context, cost int) error
	// AlarmGate is the apply-time alarm gate as the alarms stand now:
	// alarm.ErrCorrupt or alarm.ErrNoSpace if applying req would fail
	// on them. The edge answers it before a permission error, since
	// etcd's alarm appliers wrap its auth applier.
	AlarmGate(req *pb.InternalRaftRequest) error
}

// Cluster is the membership as etcd's Cluster service serves it. Errors of
// the changes: the membership package's sentinels, the raftnode errors of
// Raft.Propose, ctx errors.
type Cluster interface {
	// Members lists the cluster's members (ID, Name, PeerURLs, ClientURLs, IsLearner). linearizable=true first does ReadIndex.
	Members(ctx context.Context, linearizable bool) ([]*pb.Member, error)
	// AddMember adds a member with peerURLs, as a learner if learner is
	// set, and returns it (ID, PeerURLs, IsLearner) and every member after
	// the change.
	AddMember(ctx context.Context, peerURLs []string, learner bool) (*pb.Member, []*pb.Member, error)
	// RemoveMember removes member id and returns the members after it.
	RemoveMember(ctx context.Context, id uint64) ([]*pb.Member, error)
	// UpdateMember replaces member id's peer URLs and returns the members.
	UpdateMember(ctx context.Context, id uint64, peerURLs []string) ([]*pb.Member, error)
	// PromoteMember makes learner id a voter and returns the members.
	PromoteMember(ctx context.Context, id uint64) ([]*pb.Member, error)
}

// Maintenance is the part of a member the Maintenance service needs.
type Maintenance interface {
	// Status fills what `etcdctl endpoint status` shows: Version, DbSize, DbSizeInUse, Leader, RaftIndex, RaftTerm, RaftAppliedIndex, Errors, IsLearner, StorageVersion, DbSizeQuota.
	Status(ctx context.Context) (*pb.StatusResponse, error)
	// Alarm replicates an alarm request through raft and returns its response.
	Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error)
	// Snapshot returns a snapshot stream of the state keyspace and its
	// size; the caller must close it.
	Snapshot(ctx context.Context) (io.ReadCloser, int64, error)
	// MoveLeader hands leadership to target. Errors: raftnode.ErrNotLeader,
	// ErrBadTransferee, ErrTransferTimeout, ErrStopped.
	MoveLeader(ctx context.Context, target uint64) error
	// Defragment reclaims disk space.
	Defragment(ctx context.Context) error
}

// Leases is the member's local view of its leases (*lease.Lessor).
type Leases interface {
	// Lookup returns lease id's state (its attached keys if withKeys) and
	// whether it exists.
	Lookup(id int64, withKeys bool) (lease.Status, bool)
	// IDs lists every lease.
	IDs() []int64
}

// LeaseGrants chooses, before proposing, what makes a grant deterministic.
type LeaseGrants interface {
	// NewLeaseID returns a fresh positive lease ID for a grant that names none.
	NewLeaseID() int64
	// MinLeaseTTL is the smallest TTL the member grants, in seconds.
	MinLeaseTTL() int64
}

// Watch is the member's watch hub (*watch.Hub).
type Watch interface {
	// NewStream opens a watch stream that sends its responses with send
	// and ends with ctx.
	NewStream(ctx context.Context, send func(watch.Response) error) *watch.Stream
}

// Leader reports the member's leader.
type Leader interface {
	// Leader is the current leader's ID, 0 if none.
	Leader() uint64
	// LeaderChanged is closed at the next change of leader.
	LeaderChanged() <-chan struct{}
}

// AuthState is the member's replicated auth state (*auth.Store) as the
// edge reads it: the checks every service makes, and the Auth service's
// reads. Changes go through Raft.
type AuthState interface {
	AuthChecks
	AuthReads
}

// AuthChecks identify a caller and check its permissions.
type AuthChecks interface {
	// Enabled reports whether auth is on.
	Enabled() bool
	// Revision is the auth revision.
	Revision() uint64
	// Verify returns who a token stands for at the current auth revision.
	Verify(token string, now time.Time) (auth.Info, error)
	// Current is user at the current auth revision.
	Current(user string) auth.Info
	// Mint signs a token for user, valid for ttl.
	Mint(user string, now time.Time, ttl time.Duration) (string, error)
	// IsRangePermitted checks a read of [key, end).
	IsRangePermitted(who auth.Info, key, end []byte) error
	// IsAdminPermitted checks that who has the root role.
	IsAdminPermitted(who auth.Info) error
	// CheckRequest checks a write.
	CheckRequest(who auth.Info, req *pb.InternalRaftRequest, leases auth.LeaseKeys) error
	// CheckTxn checks a txn.
	CheckTxn(who auth.Info, r *pb.TxnRequest, leases auth.LeaseKeys) error
	// CheckLeaseKeys checks that who may write every key of lease id.
	CheckLeaseKeys(who auth.Info, id int64, leases auth.LeaseKeys) error
	// CheckLeaseReadable checks that who may read every key of lease id.
	CheckLeaseReadable(who auth.Info, id int64, leases auth.LeaseKeys) error
}

// AuthReads are the Auth service's reads of the auth state.
type AuthReads interface {
	// Status is whether auth is on, and the auth revision.
	Status() (enabled bool, rev uint64)
	// CheckPassword checks user name's password.
	CheckPassword(name, password string) error
	// Users lists the users.
	Users() []string
	// UserRoles lists user name's roles.
	UserRoles(name string) ([]string, error)
	// HasRole reports whether user name has role.
	HasRole(name, role string) bool
	// Roles lists the roles.
	Roles() []string
	// RolePermissions lists role name's permissions.
	RolePermissions(name string) ([]*authpb.Permission, error)
}

// missing names the first nil field of b, "" if there is none.
func (b Backends) missing() string {
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"Raft", b.Raft != nil}, {"KV", b.KV != nil}, {"Member", b.Member != nil},
		{"Quota", b.Quota != nil}, {"Cluster", b.Cluster != nil}, {"Maintenance", b.Maintenance != nil},
		{"Leases", b.Leases != nil}, {"LeaseGrants", b.LeaseGrants != nil}, {"Watch", b.Watch != nil},
		{"Leader", b.Leader != nil}, {"Auth", b.Auth != nil},
	} {
		if !f.set {
			return f.name
		}
	}
	return ""
}

// mustBeComplete panics, naming the field, if b has a nil backend: that is
// a wiring bug, found when the member starts rather than at a request.
func (b Backends) mustBeComplete() {
	if name := b.missing(); name != "" {
		panic(fmt.Sprintf("etcdapi: Backends.%s is nil", name))
	}
}
