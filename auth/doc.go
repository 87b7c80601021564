// Package auth is the cluster's authentication and authorization state
// (etcd's auth store): users with bcrypt password hashes and roles, roles
// with key-range permissions, the enabled flag, the auth revision and the
// key that signs tokens. It is part of the replicated state: it changes only
// when an Auth* request is applied from the raft log (Store.Apply), inside
// the apply batch of that entry, so every member holds the same users and
// roles at the same applied index.
//
// It persists under prefix 0x34 (see docs/architecture.md):
//
//	0x34 0x00          → meta: enabled (1) + auth revision (8 BE) + token key
//	0x34 'u' + name    → a marshaled authpb.User
//	0x34 'r' + name    → a marshaled authpb.Role
//
// every value sealed by package record.
//
// Besides the state, the package answers the questions the API edge asks
// on every request, without I/O: is this token valid (Store.Verify; tokens
// are stateless HMAC-signed, see token.go), is this password right
// (Store.CheckPassword, with a bounded cache of successful bcrypt
// verifications), and may this user read or write this key range
// (Store.IsRangePermitted and friends, with etcd's semantics and errors).
// Time comes from the caller.
package auth
