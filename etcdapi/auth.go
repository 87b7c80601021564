package etcdapi

import (
	"context"
	"errors"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/auth"
)

// authService is etcd's Auth service. Changes go through raft (the member
// that receives UserAdd or UserChangePassword hashes the password first, so
// the log carries only the bcrypt hash); the proposer must have the root
// role, checked here and again on apply. Reads (AuthStatus, UserGet,
// UserList, RoleGet, RoleList) are served from this member's state after a
// read index: etcd sends them through raft, synod answers the same without
// writing to the log. Authenticate mints a signed token (auth/token.go)
// without a raft round.
type authService struct {
	pb.UnsafeAuthServer // compile error if the service grows a method
	e                   *edge
}

// changeResponse is the response of an Auth RPC that changes the auth
// state: the auth applier gives each one an empty header to fill.
type changeResponse interface {
	proto.Message
	GetHeader() *pb.ResponseHeader
}

// change checks that the caller is root (while auth is on), stamps it into
// req, replicates req and fills the header of the response, which must be
// a T.
func change[T changeResponse](ctx context.Context, a *authService, req *pb.InternalRaftRequest) (T, error) {
	var zero T
	var who auth.Info
	err := a.e.recheck(ctx, func() error {
		var err error
		if who, err = a.e.who(ctx); err != nil {
			return err
		}
		return a.e.b.Auth.IsAdminPermitted(who)
	})
	if err != nil {
		return zero, toGRPCError(err)
	}
	req.Header = &pb.RequestHeader{Username: who.User, AuthRevision: who.Revision}
	resp, err := propose[T](ctx, a.e, req) // bounded by --max-request-bytes, as etcd
	if err != nil {
		return zero, toGRPCError(err)
	}
	a.e.fillHeader(resp.GetHeader())
	return resp, nil
}

// header is the response header of an Auth RPC (the store's revision).
func (a *authService) header() *pb.ResponseHeader { return a.e.fillHeader(nil) }

// AuthEnable turns auth on; this member generates the token signing key.
func (a *authService) AuthEnable(ctx context.Context, _ *pb.AuthEnableRequest) (*pb.AuthEnableResponse, error) {
	return change[*pb.AuthEnableResponse](ctx, a, auth.EnableRequest(auth.NewKey()))
}

// AuthDisable turns auth off.
func (a *authService) AuthDisable(ctx context.Context, r *pb.AuthDisableRequest) (*pb.AuthDisableResponse, error) {
	return change[*pb.AuthDisableResponse](ctx, a, &pb.InternalRaftRequest{AuthDisable: r})
}

// AuthStatus reports the enabled flag and the auth revision (no check, as etcd).
func (a *authService) AuthStatus(ctx context.Context, _ *pb.AuthStatusRequest) (*pb.AuthStatusResponse, error) {
	if err := a.e.b.Raft.ReadIndex(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	en, rev := a.e.b.Auth.Status()
	return &pb.AuthStatusResponse{Header: a.header(), Enabled: en, AuthRevision: rev}, nil
}

// Authenticate checks a password (bcrypt, or the cache of recent successes)
// and returns a token valid on every member for --auth-token-ttl.
func (a *authService) Authenticate(ctx context.Context, r *pb.AuthenticateRequest) (*pb.AuthenticateResponse, error) {
	if err := a.e.b.Raft.ReadIndex(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	st := a.e.b.Auth
	if err := st.CheckPassword(r.GetName(), r.GetPassword()); err != nil {
		if !errors.Is(err, auth.ErrAuthNotEnabled) {
			a.e.lg.Warn("invalid authentication was requested", "user", r.GetName(), "err", err)
		}
		return nil, toGRPCError(err)
	}
	tok, err := st.Mint(r.GetName(), time.Now(), a.e.b.AuthOptions.TokenTTL)
	if err != nil {
		return nil, toGRPCError(err)
	}
	return &pb.AuthenticateResponse{Header: a.header(), Token: tok}, nil
}

// UserAdd adds a user; the password is hashed here, before proposing.
func (a *authService) UserAdd(ctx context.Context, r *pb.AuthUserAddRequest) (*pb.AuthUserAddResponse, error) {
	if err := a.e.requireAdmin(ctx); err != nil { // before paying bcrypt
		return nil, toGRPCError(err)
	}
	req := &pb.AuthUserAddRequest{Name: r.GetName(), Options: r.GetOptions()}
	if !r.GetOptions().GetNoPassword() {
		h, err := auth.HashPassword(r.GetPassword(), a.e.b.AuthOptions.BcryptCost)
		if err != nil {
			return nil, toGRPCError(err)
		}
		req.HashedPassword = h
	}
	return change[*pb.AuthUserAddResponse](ctx, a, &pb.InternalRaftRequest{AuthUserAdd: req})
}

// UserGet lists a user's roles: root may ask about anyone, a user about itself.
func (a *authService) UserGet(ctx context.Context, r *pb.AuthUserGetRequest) (*pb.AuthUserGetResponse, error) {
	if err := a.readAbout(ctx, func(who auth.Info) bool { return r.GetName() == who.User }); err != nil {
		return nil, err
	}
	roles, err := a.e.b.Auth.UserRoles(r.GetName())
	if err != nil {
		return nil, toGRPCError(err)
	}
	return &pb.AuthUserGetResponse{Header: a.header(), Roles: roles}, nil
}

// UserList lists every user (root only).
func (a *authService) UserList(ctx context.Context, _ *pb.AuthUserListRequest) (*pb.AuthUserListResponse, error) {
	if err := a.adminRead(ctx); err != nil {
		return nil, err
	}
	return &pb.AuthUserListResponse{Header: a.header(), Users: a.e.b.Auth.Users()}, nil
}

// readAbout is the read index and check of UserGet and RoleGet: root may
// read about anyone, another caller only when own(caller) holds (its own
// user, one of its roles).
func (a *authService) readAbout(ctx context.Context, own func(auth.Info) bool) error {
	if err := a.e.b.Raft.ReadIndex(ctx); err != nil {
		return toGRPCError(err)
	}
	who, err := a.e.who(ctx)
	if err != nil {
		return toGRPCError(err)
	}
	if err := a.e.b.Auth.IsAdminPermitted(who); err != nil && !own(who) {
		return toGRPCError(err)
	}
	return nil
}

// adminRead is the read index and root check of a listing.
func (a *authService) adminRead(ctx context.Context) error {
	if err := a.e.b.Raft.ReadIndex(ctx); err != nil {
		return toGRPCError(err)
	}
	return toGRPCError(a.e.requireAdmin(ctx))
}

// UserDelete deletes a user.
func (a *authService) UserDelete(ctx context.Context, r *pb.AuthUserDeleteRequest) (*pb.AuthUserDeleteResponse, error) {
	return change[*pb.AuthUserDeleteResponse](ctx, a, &pb.InternalRaftRequest{AuthUserDelete: r})
}

// UserChangePassword sets a user's password; it is hashed here, before
// proposing (an empty password is stored as no hash, as etcd).
func (a *authService) UserChangePassword(ctx context.Context, r *pb.AuthUserChangePasswordRequest) (*pb.AuthUserChangePasswordResponse, error) {
	if err := a.e.requireAdmin(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	req := &pb.AuthUserChangePasswordRequest{Name: r.GetName(), HashedPassword: r.GetHashedPassword()}
	if r.GetPassword() != "" {
		h, err := auth.HashPassword(r.GetPassword(), a.e.b.AuthOptions.BcryptCost)
		if err != nil {
			return nil, toGRPCError(err)
		}
		req.HashedPassword = h
	}
	return change[*pb.AuthUserChangePasswordResponse](ctx, a, &pb.InternalRaftRequest{AuthUserChangePassword: req})
}

// UserGrantRole grants a role to a user.
func (a *authService) UserGrantRole(ctx context.Context, r *pb.AuthUserGrantRoleRequest) (*pb.AuthUserGrantRoleResponse, error) {
	return change[*pb.AuthUserGrantRoleResponse](ctx, a, &pb.InternalRaftRequest{AuthUserGrantRole: r})
}

// UserRevokeRole takes a role from a user.
func (a *authService) UserRevokeRole(ctx context.Context, r *pb.AuthUserRevokeRoleRequest) (*pb.AuthUserRevokeRoleResponse, error) {
	return change[*pb.AuthUserRevokeRoleResponse](ctx, a, &pb.InternalRaftRequest{AuthUserRevokeRole: r})
}

// RoleAdd adds a role.
func (a *authService) RoleAdd(ctx context.Context, r *pb.AuthRoleAddRequest) (*pb.AuthRoleAddResponse, error) {
	return change[*pb.AuthRoleAddResponse](ctx, a, &pb.InternalRaftRequest{AuthRoleAdd: r})
}

// RoleGet lists a role's permissions: root may ask about any role, a user
// about its own roles.
func (a *authService) RoleGet(ctx context.Context, r *pb.AuthRoleGetRequest) (*pb.AuthRoleGetResponse, error) {
	st := a.e.b.Auth
	if err := a.readAbout(ctx, func(who auth.Info) bool { return st.HasRole(who.User, r.GetRole()) }); err != nil {
		return nil, err
	}
	perms, err := st.RolePermissions(r.GetRole())
	if err != nil {
		return nil, toGRPCError(err)
	}
	return &pb.AuthRoleGetResponse{Header: a.header(), Perm: perms}, nil
}

// RoleList lists every role (root only).
func (a *authService) RoleList(ctx context.Context, _ *pb.AuthRoleListRequest) (*pb.AuthRoleListResponse, error) {
	if err := a.adminRead(ctx); err != nil {
		return nil, err
	}
	return &pb.AuthRoleListResponse{Header: a.header(), Roles: a.e.b.Auth.Roles()}, nil
}

// RoleDelete deletes a role and takes it from every user.
func (a *authService) RoleDelete(ctx context.Context, r *pb.AuthRoleDeleteRequest) (*pb.AuthRoleDeleteResponse, error) {
	return change[*pb.AuthRoleDeleteResponse](ctx, a, &pb.InternalRaftRequest{AuthRoleDelete: r})
}

// RoleGrantPermission grants (or changes) a key-range permission of a role.
func (a *authService) RoleGrantPermission(ctx context.Context, r *pb.AuthRoleGrantPermissionRequest) (*pb.AuthRoleGrantPermissionResponse, error) {
	return change[*pb.AuthRoleGrantPermissionResponse](ctx, a, &pb.InternalRaftRequest{AuthRoleGrantPermission: r})
}

// RoleRevokePermission revokes a key-range permission of a role.
func (a *authService) RoleRevokePermission(ctx context.Context, r *pb.AuthRoleRevokePermissionRequest) (*pb.AuthRoleRevokePermissionResponse, error) {
	return change[*pb.AuthRoleRevokePermissionResponse](ctx, a, &pb.InternalRaftRequest{AuthRoleRevokePermission: r})
}
