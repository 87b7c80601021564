package auth

import (
	"encoding/binary"
	"fmt"
	"sort"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/etcd/api/v3/authpb"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/record"
)

// Prefix is the first byte of every auth key (docs/architecture.md).
const Prefix byte = 0x34

// Second bytes of the auth keys.
const (
	metaTag byte = 0x00
	userTag byte = 'u'
	roleTag byte = 'r'
)

// Names etcd gives special meaning to.
const (
	// RootUser is the user AuthEnable requires.
	RootUser = "root"
	// RootRole is the role that may do everything.
	RootRole = "root"
)

// Store is the replicated auth state. The raft loop changes it (Apply);
// any goroutine may read it. Safe for concurrent use.
type Store struct {
	mu      sync.RWMutex
	enabled bool
	rev     uint64
	key     []byte // token signing key, set by AuthEnable
	users   map[string]*authpb.User
	roles   map[string]*authpb.Role
	perms   map[string]*userPerms // derived from users and roles
	pw      *passwordCache
}

// Reader is what Load reads from: *pebble.DB or *pebble.Snapshot.
type Reader interface {
	NewIter(o *pebble.IterOptions) (*pebble.Iterator, error)
}

// Load reads the auth state stored in r. A store that never saw an auth
// request has auth disabled and auth revision 1, as a new etcd.
func Load(r Reader) (*Store, error) {
	s := &Store{pw: newPasswordCache(defaultPasswordCacheSize)}
	return s, s.Reload(r)
}

// Reload replaces the state with the one stored in r (after a snapshot was
// installed). A record that fails its checksum is record.ErrCorrupt.
func (s *Store) Reload(r Reader) (err error) {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: []byte{Prefix}, UpperBound: []byte{Prefix + 1}})
	if err != nil {
		return fmt.Errorf("auth: iterator: %w", err)
	}
	defer func() {
		if cerr := it.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("auth: read: %w", cerr)
		}
	}()
	st := state{rev: 1, users: map[string]*authpb.User{}, roles: map[string]*authpb.Role{}}
	for it.First(); it.Valid(); it.Next() {
		if err := st.load(it.Key(), it.Value()); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.enabled, s.rev, s.key, s.users, s.roles = st.enabled, st.rev, st.key, st.users, st.roles
	s.refreshPerms()
	s.mu.Unlock()
	return nil
}

// state is the stored auth state while it is read.
type state struct {
	enabled bool
	rev     uint64
	key     []byte
	users   map[string]*authpb.User
	roles   map[string]*authpb.Role
}

// load decodes one stored record into st.
func (st *state) load(k, v []byte) error {
	p, err := record.Open(k, v)
	if err != nil {
		return fmt.Errorf("auth: read %x: %w", k, err)
	}
	if len(k) < 2 {
		return fmt.Errorf("auth: key %x: %w", k, record.ErrCorrupt)
	}
	switch k[1] {
	case metaTag:
		if len(p) < 9 {
			return fmt.Errorf("auth: meta record of %d bytes: %w", len(p), record.ErrCorrupt)
		}
		st.enabled = p[0] == 1
		st.rev = binary.BigEndian.Uint64(p[1:9])
		st.key = append([]byte(nil), p[9:]...)
	case userTag:
		u := &authpb.User{}
		if err := proto.Unmarshal(p, u); err != nil {
			return fmt.Errorf("auth: decode %x: %w: %v", k, record.ErrCorrupt, err)
		}
		st.users[string(u.Name)] = u
	case roleTag:
		r := &authpb.Role{}
		if err := proto.Unmarshal(p, r); err != nil {
			return fmt.Errorf("auth: decode %x: %w: %v", k, record.ErrCorrupt, err)
		}
		st.roles[string(r.Name)] = r
	default:
		return fmt.Errorf("auth: unknown key %x: %w", k, record.ErrCorrupt)
	}
	return nil
}

// metaKey, userKey and roleKey are where the state is stored.
func metaKey() []byte            { return []byte{Prefix, metaTag} }
func userKey(name string) []byte { return append([]byte{Prefix, userTag}, name...) }
func roleKey(name string) []byte { return append([]byte{Prefix, roleTag}, name...) }

// putMeta writes the enabled flag, the revision and the key to b.
func (s *Store) putMeta(b *pebble.Batch) error {
	p := make([]byte, 9, 9+len(s.key))
	if s.enabled {
		p[0] = 1
	}
	binary.BigEndian.PutUint64(p[1:9], s.rev)
	p = append(p, s.key...)
	k := metaKey()
	return b.Set(k, record.Seal(nil, k, p), nil)
}

// putUser writes u to b and to memory.
func (s *Store) putUser(b *pebble.Batch, u *authpb.User) error {
	p, err := proto.Marshal(u)
	if err != nil {
		return fmt.Errorf("auth: marshal user: %w", err)
	}
	k := userKey(string(u.Name))
	if err := b.Set(k, record.Seal(nil, k, p), nil); err != nil {
		return err
	}
	s.users[string(u.Name)] = u
	return nil
}

// putRole writes r to b and to memory.
func (s *Store) putRole(b *pebble.Batch, r *authpb.Role) error {
	p, err := proto.Marshal(r)
	if err != nil {
		return fmt.Errorf("auth: marshal role: %w", err)
	}
	k := roleKey(string(r.Name))
	if err := b.Set(k, record.Seal(nil, k, p), nil); err != nil {
		return err
	}
	s.roles[string(r.Name)] = r
	return nil
}

// Enabled reports whether auth is enabled.
func (s *Store) Enabled() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.enabled
}

// Revision is the auth revision: 1 in a new cluster, bumped by every
// applied auth change except AuthEnable (as etcd).
func (s *Store) Revision() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.rev
}

// Status is the enabled flag and the auth revision, read together.
func (s *Store) Status() (enabled bool, rev uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.enabled, s.rev
}

// UserRoles returns the roles of user name, sorted.
func (s *Store) UserRoles(name string) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.users[name]
	if !ok {
		return nil, ErrUserNotFound
	}
	return append([]string(nil), u.Roles...), nil
}

// Users lists the user names, sorted.
func (s *Store) Users() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return sortedNames(s.users)
}

// Roles lists the role names, sorted.
func (s *Store) Roles() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return sortedNames(s.roles)
}

// rootPerm is what RoleGet answers for the root role, as etcd.
func rootPerm() *authpb.Permission {
	return &authpb.Permission{PermType: authpb.Permission_READWRITE, Key: []byte{}, RangeEnd: []byte{0}}
}

// RolePermissions returns copies of the permissions of role name (the root
// role reports read-write on every key, as etcd).
func (s *Store) RolePermissions(name string) ([]*authpb.Permission, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.roles[name]
	if !ok {
		return nil, ErrRoleNotFound
	}
	if name == RootRole {
		return []*authpb.Permission{rootPerm()}, nil
	}
	out := make([]*authpb.Permission, len(r.KeyPermission))
	for i, p := range r.KeyPermission {
		out[i] = proto.CloneOf(p)
	}
	return out, nil
}

// HasRole reports whether user name has role.
func (s *Store) HasRole(name, role string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.users[name]
	return ok && hasRole(u, role)
}

func hasRole(u *authpb.User, role string) bool {
	i := sort.SearchStrings(u.Roles, role)
	return i < len(u.Roles) && u.Roles[i] == role
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
