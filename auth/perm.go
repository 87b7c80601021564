package auth

import (
	"bytes"
	"sort"

	"go.etcd.io/etcd/api/v3/authpb"
)

// Info is who makes a request: the user and the auth revision at which the
// permission check is made (etcd's AuthInfo). The zero Info is nobody.
type Info struct {
	User     string
	Revision uint64
}

// span is the key interval [start, end); a nil end is unbounded.
type span struct{ start, end []byte }

// covers reports whether s holds every key of [start, end) (end nil:
// unbounded).
func (s span) covers(start, end []byte) bool {
	if bytes.Compare(start, s.start) < 0 {
		return false
	}
	if s.end == nil {
		return true
	}
	if bytes.Compare(start, s.end) >= 0 {
		return false
	}
	return end != nil && bytes.Compare(end, s.end) <= 0
}

// spans is a sorted set of disjoint, non-adjacent spans: the union of a
// user's permissions of one type.
type spans []span

// union merges the spans into their sorted, disjoint union.
func union(in []span) spans {
	sort.Slice(in, func(i, j int) bool { return bytes.Compare(in[i].start, in[j].start) < 0 })
	var out spans
	for _, s := range in {
		n := len(out)
		if n > 0 && (out[n-1].end == nil || bytes.Compare(s.start, out[n-1].end) <= 0) {
			if out[n-1].end != nil && (s.end == nil || bytes.Compare(s.end, out[n-1].end) > 0) {
				out[n-1].end = s.end
			}
			continue
		}
		out = append(out, s)
	}
	return out
}

// covers reports whether the union holds every key of [start, end). Since
// the spans are disjoint and non-adjacent, one span must hold it all.
func (ss spans) covers(start, end []byte) bool {
	i := sort.Search(len(ss), func(i int) bool { return bytes.Compare(ss[i].start, start) > 0 })
	return i > 0 && ss[i-1].covers(start, end)
}

// userPerms is one user's permissions, merged across roles.
type userPerms struct {
	admin bool
	read  spans
	write spans
}

// permSpan is the key interval a stored permission grants, as etcd reads
// it: no range end is the key alone, range end "\x00" is every key from Key.
func permSpan(p *authpb.Permission) span {
	switch {
	case len(p.RangeEnd) == 0:
		return span{p.Key, pointEnd(p.Key)}
	case isOpenEnded(p.RangeEnd):
		return span{p.Key, nil}
	}
	return span{p.Key, p.RangeEnd}
}

// pointEnd is the end of the interval holding key alone.
func pointEnd(key []byte) []byte { return append(bytes.Clone(key), 0) }

func isOpenEnded(end []byte) bool { return len(end) == 1 && end[0] == 0 }

// ValidPermissionRange reports whether [key, end) may be granted: a
// non-empty key, and no end (the key alone), "\x00" (from the key on) or an
// end after the key (etcd's isValidPermissionRange).
func ValidPermissionRange(key, end []byte) bool {
	if len(key) == 0 {
		return false
	}
	return len(end) == 0 || isOpenEnded(end) || bytes.Compare(key, end) < 0
}

// refreshPerms recomputes every user's merged permissions. Callers hold mu.
func (s *Store) refreshPerms() {
	s.perms = make(map[string]*userPerms, len(s.users))
	for name, u := range s.users {
		up := &userPerms{admin: hasRole(u, RootRole)}
		var read, write []span
		for _, rn := range u.Roles {
			r, ok := s.roles[rn]
			if !ok {
				continue
			}
			for _, p := range r.KeyPermission {
				sp := permSpan(p)
				if p.PermType == authpb.Permission_READ || p.PermType == authpb.Permission_READWRITE {
					read = append(read, sp)
				}
				if p.PermType == authpb.Permission_WRITE || p.PermType == authpb.Permission_READWRITE {
					write = append(write, sp)
				}
			}
		}
		up.read, up.write = union(read), union(write)
		s.perms[name] = up
	}
}

// IsRangePermitted checks that who may read [key, end) (etcd's range end
// conventions: empty is the key alone, "\x00" is every key from key).
// Errors: ErrUserEmpty without a user, ErrAuthOldRevision if the state
// changed since who.Revision, ErrPermissionDenied. Nil while auth is off.
func (s *Store) IsRangePermitted(who Info, key, end []byte) error {
	return s.opPermitted(who, key, end, false)
}

// IsPutPermitted checks that who may write key.
func (s *Store) IsPutPermitted(who Info, key []byte) error {
	return s.opPermitted(who, key, nil, true)
}

// IsDeleteRangePermitted checks that who may write [key, end).
func (s *Store) IsDeleteRangePermitted(who Info, key, end []byte) error {
	return s.opPermitted(who, key, end, true)
}

func (s *Store) opPermitted(who Info, key, end []byte, write bool) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.enabled {
		return nil
	}
	if who.Revision == 0 {
		return ErrUserEmpty
	}
	if who.Revision < s.rev {
		return ErrAuthOldRevision
	}
	up, ok := s.perms[who.User]
	if !ok {
		return ErrPermissionDenied
	}
	if up.admin {
		return nil
	}
	var rangeEnd []byte
	switch {
	case len(end) == 0:
		rangeEnd = pointEnd(key)
	case isOpenEnded(end):
		rangeEnd = nil
	default:
		rangeEnd = end
	}
	set := up.read
	if write {
		set = up.write
	}
	if set.covers(key, rangeEnd) {
		return nil
	}
	return ErrPermissionDenied
}

// IsAdminPermitted checks that who has the root role (nil while auth is
// off). Errors: ErrUserEmpty, ErrUserNotFound, ErrPermissionDenied.
func (s *Store) IsAdminPermitted(who Info) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.adminPermittedLocked(who.User)
}

func (s *Store) adminPermittedLocked(user string) error {
	if !s.enabled {
		return nil
	}
	if user == "" {
		return ErrUserEmpty
	}
	u, ok := s.users[user]
	if !ok {
		return ErrUserNotFound
	}
	if !hasRole(u, RootRole) {
		return ErrPermissionDenied
	}
	return nil
}
