package auth

import (
	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/etcd/api/v3/authpb"
	"google.golang.org/protobuf/proto"
)

// State is the replicated auth state as a snapshot in etcd's format carries
// it (package etcdsnap): no token signing key, which is synod's own.
type State struct {
	// Enabled is whether auth is on.
	Enabled bool
	// Revision is the auth revision.
	Revision uint64
	// Users and Roles are every user and role, in name order.
	Users []*authpb.User
	Roles []*authpb.Role
}

// ReadState reads the auth state stored in r.
func ReadState(r Reader) (State, error) {
	s, err := Load(r)
	if err != nil {
		return State{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := State{Enabled: s.enabled, Revision: s.rev}
	for _, name := range sortedNames(s.users) {
		st.Users = append(st.Users, proto.CloneOf(s.users[name]))
	}
	for _, name := range sortedNames(s.roles) {
		st.Roles = append(st.Roles, proto.CloneOf(s.roles[name]))
	}
	return st, nil
}

// WriteState adds the records of st to b, which goes into a database
// holding no auth state yet, with key as the token signing key when auth
// is enabled (every member of a cluster must hold the same key). A
// revision of 0 (etcd's before any auth change) is stored as 1, the
// revision etcd serves then.
func WriteState(b *pebble.Batch, st State, key []byte) error {
	s := &Store{enabled: st.Enabled, rev: max(st.Revision, 1), users: map[string]*authpb.User{}, roles: map[string]*authpb.Role{}}
	if st.Enabled {
		s.key = key
	}
	for _, u := range st.Users {
		if err := s.putUser(b, u); err != nil {
			return err
		}
	}
	for _, r := range st.Roles {
		if err := s.putRole(b, r); err != nil {
			return err
		}
	}
	return s.putMeta(b)
}
