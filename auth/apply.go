package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"sort"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"
)

// KeySize is the size of the token signing key AuthEnable installs.
const KeySize = 32

// EnableRequest is the raft request that enables auth and installs key as
// the token signing key. etcd's AuthEnableRequest has no field for it, so
// the key rides in the entry's InternalAuthenticateRequest.SimpleToken,
// hex-encoded: synod's raft entries are read only by synod.
func EnableRequest(key []byte) *pb.InternalRaftRequest {
	return &pb.InternalRaftRequest{
		AuthEnable:   &pb.AuthEnableRequest{},
		Authenticate: &pb.InternalAuthenticateRequest{SimpleToken: hex.EncodeToString(key)},
	}
}

// IsMutation reports whether req is an auth change Apply handles.
func IsMutation(req *pb.InternalRaftRequest) bool {
	return req.AuthEnable != nil || req.AuthDisable != nil ||
		req.AuthUserAdd != nil || req.AuthUserDelete != nil || req.AuthUserChangePassword != nil ||
		req.AuthUserGrantRole != nil || req.AuthUserRevokeRole != nil ||
		req.AuthRoleAdd != nil || req.AuthRoleDelete != nil ||
		req.AuthRoleGrantPermission != nil || req.AuthRoleRevokePermission != nil
}

// Apply applies a committed auth change (IsMutation) as etcd's auth store
// does, adding its writes to b, the apply batch of its raft entry. While
// auth is enabled the proposer (req.Header.Username) must have the root
// role. It returns the response, or the request's error (reqErr: nothing
// was changed); err is a storage failure after which the caller must stop
// the member. The in-memory state changes at once; the caller commits b.
func (s *Store) Apply(b *pebble.Batch, req *pb.InternalRaftRequest) (resp proto.Message, reqErr, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.adminPermittedLocked(req.GetHeader().GetUsername()); err != nil {
		return nil, err, nil
	}
	before := s.rev
	a := applying{s: s, b: b}
	resp, reqErr = a.apply(req)
	if a.err != nil {
		return nil, nil, a.err
	}
	if reqErr != nil {
		return nil, reqErr, nil
	}
	if a.bump {
		s.rev++
	}
	if s.rev != before || a.meta {
		if err := s.putMeta(b); err != nil {
			return nil, nil, err
		}
	}
	s.refreshPerms()
	return resp, nil, nil
}

// applying is one Apply in progress; err records a storage failure.
type applying struct {
	s    *Store
	b    *pebble.Batch
	bump bool // the change bumps the auth revision
	meta bool // the enabled flag or the key changed
	err  error
}

// apply dispatches req to its handler. Every response carries an empty
// header, which the API edge fills (member, term, revision) for the caller.
func (a *applying) apply(req *pb.InternalRaftRequest) (proto.Message, error) {
	h := &pb.ResponseHeader{}
	switch {
	case req.AuthEnable != nil:
		return &pb.AuthEnableResponse{Header: h}, a.enable(req.GetAuthenticate().GetSimpleToken())
	case req.AuthDisable != nil:
		a.disable()
		return &pb.AuthDisableResponse{Header: h}, nil
	case req.AuthUserAdd != nil:
		return &pb.AuthUserAddResponse{Header: h}, a.userAdd(req.AuthUserAdd)
	case req.AuthUserDelete != nil:
		return &pb.AuthUserDeleteResponse{Header: h}, a.userDelete(req.AuthUserDelete.Name)
	case req.AuthUserChangePassword != nil:
		return &pb.AuthUserChangePasswordResponse{Header: h}, a.changePassword(req.AuthUserChangePassword)
	case req.AuthUserGrantRole != nil:
		return &pb.AuthUserGrantRoleResponse{Header: h}, a.grantRole(req.AuthUserGrantRole.User, req.AuthUserGrantRole.Role)
	case req.AuthUserRevokeRole != nil:
		return &pb.AuthUserRevokeRoleResponse{Header: h}, a.revokeRole(req.AuthUserRevokeRole.Name, req.AuthUserRevokeRole.Role)
	case req.AuthRoleAdd != nil:
		return &pb.AuthRoleAddResponse{Header: h}, a.roleAdd(req.AuthRoleAdd.Name)
	case req.AuthRoleDelete != nil:
		return &pb.AuthRoleDeleteResponse{Header: h}, a.roleDelete(req.AuthRoleDelete.Role)
	case req.AuthRoleGrantPermission != nil:
		return &pb.AuthRoleGrantPermissionResponse{Header: h}, a.grantPermission(req.AuthRoleGrantPermission)
	case req.AuthRoleRevokePermission != nil:
		r := req.AuthRoleRevokePermission
		return &pb.AuthRoleRevokePermissionResponse{Header: h}, a.revokePermission(r.Role, r.Key, r.RangeEnd)
	}
	return nil, nil
}

// enable turns auth on if root exists with the root role, installing the
// hex-encoded signing key. Enabling an enabled store changes nothing; as in
// etcd, enabling does not bump the revision.
func (a *applying) enable(hexKey string) error {
	s := a.s
	if s.enabled {
		return nil
	}
	u, ok := s.users[RootUser]
	if !ok {
		return ErrRootUserNotExist
	}
	if !hasRole(u, RootRole) {
		return ErrRootRoleNotExist
	}
	key, err := hex.DecodeString(hexKey)
	if err != nil || len(key) < KeySize {
		// An entry without a key (never proposed by synod) still enables
		// auth deterministically; tokens cannot be minted until a key is set.
		key = nil
	}
	s.enabled, s.key, a.meta = true, key, true
	return nil
}

// disable turns auth off and bumps the revision, if it was on.
func (a *applying) disable() {
	if !a.s.enabled {
		return
	}
	a.s.enabled, a.s.key, a.meta, a.bump = false, nil, true, true
}

// password decodes the base64 bcrypt hash the proposing member computed.
func password(hashed string) ([]byte, error) {
	p, err := base64.StdEncoding.DecodeString(hashed)
	if err != nil {
		return nil, ErrNoPasswordUser
	}
	return p, nil
}

func (a *applying) userAdd(r *pb.AuthUserAddRequest) error {
	if r.Name == "" {
		return ErrUserEmpty
	}
	if _, ok := a.s.users[r.Name]; ok {
		return ErrUserAlreadyExist
	}
	opts := r.Options
	if opts == nil {
		opts = &authpb.UserAddOptions{}
	}
	u := &authpb.User{Name: []byte(r.Name), Options: proto.CloneOf(opts)}
	if !opts.NoPassword {
		p, err := password(r.HashedPassword)
		if err != nil {
			return err
		}
		u.Password = p
	}
	return a.putUser(u)
}

func (a *applying) userDelete(name string) error {
	if a.s.enabled && name == RootUser {
		return ErrInvalidAuthMgmt
	}
	if _, ok := a.s.users[name]; !ok {
		return ErrUserNotFound
	}
	if a.err = a.b.Delete(userKey(name), nil); a.err == nil {
		delete(a.s.users, name)
		a.bump = true
	}
	return nil
}

func (a *applying) changePassword(r *pb.AuthUserChangePasswordRequest) error {
	u, ok := a.s.users[r.Name]
	if !ok {
		return ErrUserNotFound
	}
	nu := &authpb.User{Name: u.Name, Roles: u.Roles, Options: u.Options}
	if u.Options == nil || !u.Options.NoPassword {
		p, err := password(r.HashedPassword)
		if err != nil {
			return err
		}
		nu.Password = p
	}
	return a.putUser(nu)
}

func (a *applying) grantRole(name, role string) error {
	u, ok := a.s.users[name]
	if !ok {
		return ErrUserNotFound
	}
	if _, ok := a.s.roles[role]; !ok && role != RootRole {
		return ErrRoleNotFound
	}
	if hasRole(u, role) {
		return nil // etcd ignores a duplicate grant, revision unchanged
	}
	nu := proto.CloneOf(u)
	nu.Roles = append(nu.Roles, role)
	sort.Strings(nu.Roles)
	return a.putUser(nu)
}

func (a *applying) revokeRole(name, role string) error {
	if a.s.enabled && name == RootUser && role == RootRole {
		return ErrInvalidAuthMgmt
	}
	u, ok := a.s.users[name]
	if !ok {
		return ErrUserNotFound
	}
	if !hasRole(u, role) {
		return ErrRoleNotGranted
	}
	nu := &authpb.User{Name: u.Name, Password: u.Password, Options: u.Options, Roles: without(u.Roles, role)}
	return a.putUser(nu)
}

func (a *applying) roleAdd(name string) error {
	if name == "" {
		return ErrRoleEmpty
	}
	if _, ok := a.s.roles[name]; ok {
		return ErrRoleAlreadyExist
	}
	return a.putRole(&authpb.Role{Name: []byte(name)})
}

// roleDelete deletes the role and takes it from every user that had it.
func (a *applying) roleDelete(name string) error {
	if a.s.enabled && name == RootRole {
		return ErrInvalidAuthMgmt
	}
	if _, ok := a.s.roles[name]; !ok {
		return ErrRoleNotFound
	}
	if a.err = a.b.Delete(roleKey(name), nil); a.err != nil {
		return nil
	}
	delete(a.s.roles, name)
	a.bump = true
	for _, un := range sortedNames(a.s.users) {
		u := a.s.users[un]
		if !hasRole(u, name) {
			continue
		}
		nu := &authpb.User{Name: u.Name, Password: u.Password, Options: u.Options, Roles: without(u.Roles, name)}
		if err := a.putUser(nu); err != nil || a.err != nil {
			return err
		}
	}
	return nil
}

// grantPermission adds r.Perm to the role, or changes the type of an equal
// range, keeping the permissions sorted by key (etcd's algorithm, quirks
// included: only the first permission with the same key is compared).
func (a *applying) grantPermission(r *pb.AuthRoleGrantPermissionRequest) error {
	if r.Perm == nil {
		return ErrPermissionNotGiven
	}
	if !ValidPermissionRange(r.Perm.Key, r.Perm.RangeEnd) {
		return ErrInvalidAuthMgmt
	}
	role, ok := a.s.roles[r.Name]
	if !ok {
		return ErrRoleNotFound
	}
	nr := proto.CloneOf(role)
	perms := nr.KeyPermission
	i := sort.Search(len(perms), func(i int) bool { return bytes.Compare(perms[i].Key, r.Perm.Key) >= 0 })
	if i < len(perms) && bytes.Equal(perms[i].Key, r.Perm.Key) && bytes.Equal(perms[i].RangeEnd, r.Perm.RangeEnd) {
		perms[i].PermType = r.Perm.PermType
	} else {
		perms = append(perms, &authpb.Permission{Key: r.Perm.Key, RangeEnd: r.Perm.RangeEnd, PermType: r.Perm.PermType})
		sort.SliceStable(perms, func(i, j int) bool { return bytes.Compare(perms[i].Key, perms[j].Key) < 0 })
	}
	nr.KeyPermission = perms
	return a.putRole(nr)
}

func (a *applying) revokePermission(name string, key, end []byte) error {
	role, ok := a.s.roles[name]
	if !ok {
		return ErrRoleNotFound
	}
	nr := &authpb.Role{Name: role.Name}
	for _, p := range role.KeyPermission {
		if !bytes.Equal(p.Key, key) || !bytes.Equal(p.RangeEnd, end) {
			nr.KeyPermission = append(nr.KeyPermission, p)
		}
	}
	if len(nr.KeyPermission) == len(role.KeyPermission) {
		return ErrPermissionNotGranted
	}
	return a.putRole(nr)
}

// putUser and putRole store a changed user or role and bump the revision.
func (a *applying) putUser(u *authpb.User) error {
	if a.err = a.s.putUser(a.b, u); a.err == nil {
		a.bump = true
	}
	return nil
}

func (a *applying) putRole(r *authpb.Role) error {
	if a.err = a.s.putRole(a.b, r); a.err == nil {
		a.bump = true
	}
	return nil
}

// without returns roles less role, in a new slice.
func without(roles []string, role string) []string {
	var out []string
	for _, r := range roles {
		if r != role {
			out = append(out, r)
		}
	}
	return out
}
