package auth

import "errors"

// Errors with etcd's messages (server/auth/store.go). etcdapi maps each to
// the rpctypes gRPC error etcd sends for it.
var (
	// ErrRootUserNotExist: AuthEnable without a user named root.
	ErrRootUserNotExist = errors.New("auth: root user does not exist")
	// ErrRootRoleNotExist: AuthEnable while the root user lacks the root role.
	ErrRootRoleNotExist = errors.New("auth: root user does not have root role")
	// ErrUserAlreadyExist: UserAdd of an existing name.
	ErrUserAlreadyExist = errors.New("auth: user already exists")
	// ErrUserEmpty: an empty user name, or a request without a user while auth is enabled.
	ErrUserEmpty = errors.New("auth: user name is empty")
	// ErrUserNotFound: the named user does not exist.
	ErrUserNotFound = errors.New("auth: user not found")
	// ErrRoleAlreadyExist: RoleAdd of an existing name.
	ErrRoleAlreadyExist = errors.New("auth: role already exists")
	// ErrRoleNotFound: the named role does not exist.
	ErrRoleNotFound = errors.New("auth: role not found")
	// ErrRoleEmpty: RoleAdd with an empty name.
	ErrRoleEmpty = errors.New("auth: role name is empty")
	// ErrPermissionNotGiven: RoleGrantPermission without a permission.
	ErrPermissionNotGiven = errors.New("auth: permission not given")
	// ErrAuthFailed: wrong user name or password.
	ErrAuthFailed = errors.New("auth: authentication failed, invalid user ID or password")
	// ErrNoPasswordUser: a password was given for a user created without one.
	ErrNoPasswordUser = errors.New("auth: authentication failed, password was given for no password user")
	// ErrPermissionDenied: the user may not do this.
	ErrPermissionDenied = errors.New("auth: permission denied")
	// ErrRoleNotGranted: UserRevokeRole of a role the user does not have.
	ErrRoleNotGranted = errors.New("auth: role is not granted to the user")
	// ErrPermissionNotGranted: RoleRevokePermission of a permission the role does not have.
	ErrPermissionNotGranted = errors.New("auth: permission is not granted to the role")
	// ErrAuthNotEnabled: Authenticate while auth is disabled.
	ErrAuthNotEnabled = errors.New("auth: authentication is not enabled")
	// ErrAuthOldRevision: the auth state changed between the permission
	// check and the request's effect; the client retries.
	ErrAuthOldRevision = errors.New("auth: revision in header is old")
	// ErrInvalidAuthToken: a token that is malformed, forged, expired, of a
	// deleted user or of a changed password; clients re-authenticate.
	ErrInvalidAuthToken = errors.New("auth: invalid auth token")
	// ErrInvalidAuthMgmt: deleting root, revoking root from root while
	// enabled, or an invalid permission range.
	ErrInvalidAuthMgmt = errors.New("auth: invalid auth management")
)
