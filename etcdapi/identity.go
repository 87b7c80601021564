package etcdapi

import (
	"context"
	"errors"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/synod-db/synod/auth"
)

// AuthOptions are a member's auth flags.
type AuthOptions struct {
	// BcryptCost is --bcrypt-cost: the cost of the password hashes this
	// member computes before proposing UserAdd and UserChangePassword.
	BcryptCost int
	// TokenTTL is --auth-token-ttl: how long a token this member mints is valid.
	TokenTTL time.Duration
	// ClientCertAuth is --client-cert-auth: a verified client certificate's
	// common name identifies a request that carries no token.
	ClientCertAuth bool
}

// caller is what a request presented to identify itself, taken from its
// metadata and connection once, when it arrives.
type caller struct {
	token string // the "token" (or "authorization") metadata, "" if none
	cn    string // the verified client certificate's common name, if it counts
	user  string // the user the request was identified as on arrival, "" if none
}

type callerKey struct{}

// UserFromContext returns the user a request handled by this package was
// identified as when it arrived: by its token, or by its verified client
// certificate's common name under --client-cert-auth. It reports false for
// an anonymous request, an invalid token, or while auth is disabled. It is
// the hook for interceptors chained after this package's own (the audit
// log): NewGRPCServer puts the identity in the context first of all.
func UserFromContext(ctx context.Context) (string, bool) {
	c, ok := ctx.Value(callerKey{}).(*caller)
	if !ok || c.user == "" {
		return "", false
	}
	return c.user, true
}

// identify reads what ctx presents: the token metadata, and the verified
// client certificate's common name if cn counts (as etcd's AuthInfoFromTLS,
// not for requests that came through the gRPC gateway).
func identify(ctx context.Context, cnCounts bool) *caller {
	c := &caller{}
	// ValueFromIncomingContext reads one key without copying the whole
	// metadata map (FromIncomingContext copies it on every request).
	if ts := metadata.ValueFromIncomingContext(ctx, rpctypes.TokenFieldNameGRPC); len(ts) > 0 {
		c.token = ts[0]
	} else if ts := metadata.ValueFromIncomingContext(ctx, rpctypes.TokenFieldNameSwagger); len(ts) > 0 {
		c.token = strings.TrimPrefix(ts[0], "Bearer ")
	}
	if !cnCounts || len(metadata.ValueFromIncomingContext(ctx, "grpcgateway-accept")) > 0 {
		return c
	}
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok {
			for _, chain := range ti.State.VerifiedChains {
				if len(chain) > 0 {
					c.cn = chain[0].Subject.CommonName
					break
				}
			}
		}
	}
	return c
}

// authOn reports whether auth is enabled.
func (e *edge) authOn() bool {
	return e.b.Auth.Enabled()
}

// callerOf returns what ctx presented, reading it now if no interceptor did.
func (e *edge) callerOf(ctx context.Context) *caller {
	if c, ok := ctx.Value(callerKey{}).(*caller); ok {
		return c
	}
	return identify(ctx, e.b.AuthOptions.ClientCertAuth)
}

// who is etcd's AuthInfoFromCtx: the request's identity at the current auth
// revision. While auth is off it is the zero Info and no error. A token
// wins over a certificate; an invalid one is auth.ErrInvalidAuthToken. A
// request with neither is the zero Info, which every check refuses with
// auth.ErrUserEmpty. The token is verified on every call, so a long stream
// notices its token expiring.
func (e *edge) who(ctx context.Context) (auth.Info, error) {
	who, err := e.whoNow(ctx)
	if errors.Is(err, auth.ErrInvalidAuthToken) && e.catchUp(ctx) {
		// The token may be of a user this member has not applied yet.
		who, err = e.whoNow(ctx)
	}
	return who, err
}

// whoNow is who against the state this member has applied so far.
func (e *edge) whoNow(ctx context.Context) (auth.Info, error) {
	st := e.b.Auth
	if !st.Enabled() {
		return auth.Info{}, nil
	}
	c := e.callerOf(ctx)
	switch {
	case c.token != "":
		return st.Verify(c.token, time.Now())
	case c.cn != "":
		return st.Current(c.cn), nil
	}
	return auth.Info{}, nil
}

// catchUp waits until this member has applied everything committed so far
// (a read index) and reports whether it did.
func (e *edge) catchUp(ctx context.Context) bool {
	return e.b.Raft.ReadIndex(ctx) == nil
}

// denial reports whether err is an auth check's refusal.
func denial(err error) bool {
	for _, d := range []error{auth.ErrPermissionDenied, auth.ErrUserEmpty, auth.ErrUserNotFound, auth.ErrAuthOldRevision} {
		if errors.Is(err, d) {
			return true
		}
	}
	return false
}

// recheck runs check and, if it refuses, runs it once more after this
// member caught up with the log: a member that lags behind an auth change
// acknowledged elsewhere (a grant, auth disable) must not refuse what the
// cluster already allows. A refusal thus costs a read index, never a log
// entry; what is allowed costs nothing extra.
func (e *edge) recheck(ctx context.Context, check func() error) error {
	err := check()
	if err == nil || !denial(err) || !e.catchUp(ctx) {
		return err
	}
	return check()
}

// requireUser is etcd's requireAuthInfo: while auth is on, the request must
// identify a user (any user).
func (e *edge) requireUser(ctx context.Context) error {
	return e.recheck(ctx, func() error {
		who, err := e.who(ctx)
		if err != nil {
			return err
		}
		if e.authOn() && who.User == "" {
			return auth.ErrUserEmpty
		}
		return nil
	})
}

// requireAdmin is etcd's AuthAdmin.isPermitted: while auth is on, the
// request must come from a user with the root role.
func (e *edge) requireAdmin(ctx context.Context) error {
	st := e.b.Auth
	return e.recheck(ctx, func() error {
		who, err := e.who(ctx)
		if err != nil {
			return err
		}
		return st.IsAdminPermitted(who)
	})
}

// stillCurrent is the end of etcd's doSerialize: a read checked at
// who.Revision fails with auth.ErrAuthOldRevision if the auth state changed
// while it ran.
func (e *edge) stillCurrent(who auth.Info) error {
	if who.Revision != 0 && who.Revision != e.b.Auth.Revision() {
		return auth.ErrAuthOldRevision
	}
	return nil
}

// leaseKeys returns the keys attached to a lease, for the lease checks.
func (e *edge) leaseKeys() auth.LeaseKeys { return e.keysOfLease }

// authorize checks a write at the edge (so a denied one costs no raft
// round) and stamps the caller into req's header: every member checks it
// again when applying, against the caller at that auth revision (a change
// in between is auth.ErrAuthOldRevision, as in etcd).
func (e *edge) authorize(ctx context.Context, req *pb.InternalRaftRequest) error {
	st := e.b.Auth
	if !st.Enabled() {
		// Nobody to check and nobody to stamp (what who would say); if
		// auth is enabled before this applies, applying refuses it.
		req.Header = &pb.RequestHeader{}
		return nil
	}
	var who auth.Info
	err := e.recheck(ctx, func() error {
		var err error
		if who, err = e.who(ctx); err != nil {
			return err
		}
		return st.CheckRequest(who, req, e.leaseKeys())
	})
	if errors.Is(err, auth.ErrPermissionDenied) || errors.Is(err, auth.ErrUserEmpty) {
		// etcd refuses these on apply, where its alarm appliers come
		// first: a write that an alarm would refuse gets the alarm's
		// error (an invalid token is refused before, as in etcd).
		if gate := e.b.Quota.AlarmGate(req); gate != nil {
			return gate
		}
	}
	if err != nil {
		return err
	}
	req.Header = &pb.RequestHeader{Username: who.User, AuthRevision: who.Revision}
	return nil
}

// forward returns ctx carrying, as outgoing metadata, a fresh token of the
// caller's user for the member's client of itself (Lock and Election run
// with the caller's permissions, never as an all-powerful internal user).
// While auth is off, or for an anonymous caller, ctx is returned as is.
func (e *edge) forward(ctx context.Context) (context.Context, error) {
	if e == nil {
		return ctx, nil
	}
	st := e.b.Auth
	if !st.Enabled() {
		return ctx, nil
	}
	who, err := e.who(ctx)
	if err != nil || who.User == "" {
		return ctx, err
	}
	tok, err := st.Mint(who.User, time.Now(), e.b.AuthOptions.TokenTTL)
	if err != nil {
		return ctx, nil // an identity without a stored user: the recipes see nobody
	}
	return metadata.AppendToOutgoingContext(ctx, rpctypes.TokenFieldNameGRPC, tok), nil
}

// withCaller returns ctx with the caller's identity.
func (e *edge) withCaller(ctx context.Context) context.Context {
	c := identify(ctx, e.b.AuthOptions.ClientCertAuth)
	ctx = context.WithValue(ctx, callerKey{}, c)
	if who, err := e.whoNow(ctx); err == nil { // no read index here: only for UserFromContext
		c.user = who.User
	}
	return ctx
}

// callerStream is a server stream whose context carries the caller.
type callerStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *callerStream) Context() context.Context { return s.ctx }

// checkRange checks that the caller may read [key, end) and returns who
// it is, for stillCurrent once the read is done.
func (e *edge) checkRange(ctx context.Context, key, end []byte) (auth.Info, error) {
	who, err := e.who(ctx)
	if err != nil {
		return who, err
	}
	return who, e.b.Auth.IsRangePermitted(who, key, end)
}

// checkLease is etcd's lease checks while auth is on: the caller must be a
// user, and root or allowed to write (renewals) or read (TimeToLive with
// keys, Leases) every key attached to lease id.
func (e *edge) checkLease(ctx context.Context, id int64, write bool) error {
	if !e.authOn() {
		return nil
	}
	return e.recheck(ctx, func() error {
		who, err := e.who(ctx)
		if err != nil {
			return err
		}
		return e.checkLeaseFor(who.User, id, write)
	})
}

// checkLeaseFor is checkLease for a user identified already (when a
// keep-alive stream opened: a stream outlives its token's expiry, as an
// active etcd simple token does; the permissions are still checked against
// the current state at every renewal).
func (e *edge) checkLeaseFor(user string, id int64, write bool) error {
	st := e.b.Auth
	if !st.Enabled() {
		return nil
	}
	if user == "" {
		return auth.ErrUserEmpty
	}
	who := st.Current(user)
	var err error
	if write {
		err = st.CheckLeaseKeys(who, id, e.leaseKeys())
	} else {
		err = st.CheckLeaseReadable(who, id, e.leaseKeys())
	}
	if err != nil {
		return err
	}
	return e.stillCurrent(who)
}
