package auth

import (
	"errors"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// harness is a Store on an in-memory Pebble, applying requests as the
// raft loop would: each in its own committed batch.
type harness struct {
	t  *testing.T
	db *pebble.DB
	s  *Store
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	db, err := pebble.Open("db", &pebble.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := Load(db)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, db: db, s: s}
}

// apply applies req as user and returns the request's error; a response
// always carries a header.
func (h *harness) apply(user string, req *pb.InternalRaftRequest) error {
	h.t.Helper()
	req.Header = &pb.RequestHeader{Username: user}
	b := h.db.NewBatch()
	resp, reqErr, err := h.s.Apply(b, req)
	if err != nil {
		h.t.Fatal(err)
	}
	if r, ok := resp.(interface{ GetHeader() *pb.ResponseHeader }); reqErr == nil && (!ok || r.GetHeader() == nil) {
		h.t.Fatalf("apply %v: response %T has no header for the API edge to fill", req, resp)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		h.t.Fatal(err)
	}
	return reqErr
}

// must applies req as root and fails the test on a request error.
func (h *harness) must(req *pb.InternalRaftRequest) {
	h.t.Helper()
	if err := h.apply(RootUser, req); err != nil {
		h.t.Fatalf("apply %v: %v", req, err)
	}
}

func userAdd(name, pw string) *pb.InternalRaftRequest {
	hp, err := HashPassword(pw, MinBcryptCost)
	if err != nil {
		panic(err)
	}
	return &pb.InternalRaftRequest{AuthUserAdd: &pb.AuthUserAddRequest{Name: name, HashedPassword: hp}}
}

func grantRole(user, role string) *pb.InternalRaftRequest {
	return &pb.InternalRaftRequest{AuthUserGrantRole: &pb.AuthUserGrantRoleRequest{User: user, Role: role}}
}

func roleAdd(name string) *pb.InternalRaftRequest {
	return &pb.InternalRaftRequest{AuthRoleAdd: &pb.AuthRoleAddRequest{Name: name}}
}

func grantPerm(role string, t authpb.Permission_Type, key, end string) *pb.InternalRaftRequest {
	p := &authpb.Permission{PermType: t, Key: []byte(key)}
	if end != "" {
		p.RangeEnd = []byte(end)
	}
	return &pb.InternalRaftRequest{AuthRoleGrantPermission: &pb.AuthRoleGrantPermissionRequest{Name: role, Perm: p}}
}

func revokePerm(role, key, end string) *pb.InternalRaftRequest {
	r := &pb.AuthRoleRevokePermissionRequest{Role: role, Key: []byte(key)}
	if end != "" {
		r.RangeEnd = []byte(end)
	}
	return &pb.InternalRaftRequest{AuthRoleRevokePermission: r}
}

// enabled sets up root (with the root role) and enables auth.
func (h *harness) enabled() {
	h.must(userAdd(RootUser, "rootpw"))
	h.must(grantRole(RootUser, RootRole))
	h.must(EnableRequest(NewKey()))
}

func TestPermissionMatching(t *testing.T) {
	h := newHarness(t)
	h.enabled()
	h.must(userAdd("u", "pw"))
	h.must(roleAdd("r"))
	h.must(grantRole("u", "r"))
	h.must(grantPerm("r", authpb.Permission_READ, "a", ""))         // the key a alone
	h.must(grantPerm("r", authpb.Permission_READWRITE, "p/", "p0")) // prefix p/
	h.must(grantPerm("r", authpb.Permission_WRITE, "w", "\x00"))    // from w on
	h.must(grantPerm("r", authpb.Permission_READ, "c", "e"))        // [c, e) and [d, f): overlap
	h.must(grantPerm("r", authpb.Permission_READ, "d", "f"))
	h.must(grantPerm("r", authpb.Permission_READ, "x", "y")) // [x, y) and [y, z): adjacent
	h.must(grantPerm("r", authpb.Permission_READ, "y", "z"))
	who := h.s.Current("u")
	for _, tc := range []struct {
		name     string
		write    bool
		key, end string
		want     error
	}{
		{"point read", false, "a", "", nil},
		{"point read outside", false, "b", "", ErrPermissionDenied},
		{"point write on read perm", true, "a", "", ErrPermissionDenied},
		{"range exactly the point", false, "a", "a\x00", nil},
		{"range wider than the point", false, "a", "a\x01", ErrPermissionDenied},
		{"prefix read", false, "p/", "p0", nil},
		{"prefix write", true, "p/x", "", nil},
		{"inside prefix", false, "p/a", "p/b", nil},
		{"beyond prefix", false, "p/", "p1", ErrPermissionDenied},
		{"prefix from-key", false, "p/", "\x00", ErrPermissionDenied},
		{"from-key write", true, "w", "\x00", nil},
		{"from-key write later key", true, "zzz", "", nil},
		{"from-key read denied", false, "w", "", ErrPermissionDenied},
		{"before from-key", true, "v", "", ErrPermissionDenied},
		{"overlapping union", false, "c", "f", nil},
		{"overlapping union beyond", false, "c", "f\x00", ErrPermissionDenied},
		{"adjacent union", false, "x", "z", nil},
		{"all keys", false, "\x00", "\x00", ErrPermissionDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.write {
				err = h.s.IsDeleteRangePermitted(who, []byte(tc.key), []byte(tc.end))
			} else {
				err = h.s.IsRangePermitted(who, []byte(tc.key), []byte(tc.end))
			}
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	root := h.s.Current(RootUser)
	if err := h.s.IsRangePermitted(root, []byte("\x00"), []byte("\x00")); err != nil {
		t.Fatalf("root reading everything: %v", err)
	}
	if err := h.s.IsPutPermitted(Info{}, []byte("a")); !errors.Is(err, ErrUserEmpty) {
		t.Fatalf("nobody: got %v, want ErrUserEmpty", err)
	}
	if err := h.s.IsPutPermitted(Info{User: "ghost", Revision: h.s.Revision()}, []byte("a")); !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("unknown user: got %v", err)
	}

	// Revoking takes effect at once; an Info from before is old.
	before := h.s.Current("u")
	h.must(revokePerm("r", "p/", "p0"))
	if err := h.s.IsPutPermitted(before, []byte("p/x")); !errors.Is(err, ErrAuthOldRevision) {
		t.Fatalf("old revision: got %v", err)
	}
	if err := h.s.IsPutPermitted(h.s.Current("u"), []byte("p/x")); !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("after revoke: got %v", err)
	}
	if err := h.apply(RootUser, revokePerm("r", "p/", "p0")); !errors.Is(err, ErrPermissionNotGranted) {
		t.Fatalf("revoke twice: got %v", err)
	}
	// Revoking the role takes every permission.
	h.must(&pb.InternalRaftRequest{AuthUserRevokeRole: &pb.AuthUserRevokeRoleRequest{Name: "u", Role: "r"}})
	if err := h.s.IsRangePermitted(h.s.Current("u"), []byte("a"), nil); !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("after role revoke: got %v", err)
	}
}

func TestValidPermissionRange(t *testing.T) {
	for _, tc := range []struct {
		key, end string
		want     bool
	}{
		{"a", "", true}, {"a", "b", true}, {"a", "\x00", true}, {"\x00", "\x00", true},
		{"", "", false}, {"b", "a", false}, {"a", "a", false},
	} {
		if got := ValidPermissionRange([]byte(tc.key), []byte(tc.end)); got != tc.want {
			t.Errorf("ValidPermissionRange(%q, %q) = %v, want %v", tc.key, tc.end, got, tc.want)
		}
	}
}

func TestApplySemantics(t *testing.T) {
	h := newHarness(t)
	if en, rev := h.s.Status(); en || rev != 1 {
		t.Fatalf("new store: enabled %v revision %d, want false 1", en, rev)
	}
	if err := h.apply("", EnableRequest(NewKey())); !errors.Is(err, ErrRootUserNotExist) {
		t.Fatalf("enable without root: %v", err)
	}
	h.must(userAdd(RootUser, "pw"))
	if err := h.apply("", EnableRequest(NewKey())); !errors.Is(err, ErrRootRoleNotExist) {
		t.Fatalf("enable without root role: %v", err)
	}
	h.must(grantRole(RootUser, RootRole))
	rev := h.s.Revision()
	h.must(grantRole(RootUser, RootRole)) // a duplicate grant changes nothing
	if h.s.Revision() != rev {
		t.Fatalf("duplicate grant bumped the revision")
	}
	h.must(EnableRequest(NewKey()))
	if en, r := h.s.Status(); !en || r != rev {
		t.Fatalf("after enable: enabled %v revision %d, want true %d (enable does not bump)", en, r, rev)
	}
	for _, tc := range []struct {
		user string
		req  *pb.InternalRaftRequest
		want error
	}{
		{"", roleAdd("x"), ErrUserEmpty},
		{"nobody", roleAdd("x"), ErrUserNotFound},
		{RootUser, roleAdd(""), ErrRoleEmpty},
		{RootUser, userAdd("", "pw"), ErrUserEmpty},
		{RootUser, userAdd(RootUser, "pw"), ErrUserAlreadyExist},
		{RootUser, &pb.InternalRaftRequest{AuthUserDelete: &pb.AuthUserDeleteRequest{Name: RootUser}}, ErrInvalidAuthMgmt},
		{RootUser, &pb.InternalRaftRequest{AuthRoleDelete: &pb.AuthRoleDeleteRequest{Role: RootRole}}, ErrInvalidAuthMgmt},
		{RootUser, &pb.InternalRaftRequest{AuthUserRevokeRole: &pb.AuthUserRevokeRoleRequest{Name: RootUser, Role: RootRole}}, ErrInvalidAuthMgmt},
		{RootUser, grantRole("nobody", "r"), ErrUserNotFound},
		{RootUser, grantRole(RootUser, "nope"), ErrRoleNotFound},
		{RootUser, grantPerm("nope", authpb.Permission_READ, "a", ""), ErrRoleNotFound},
		{RootUser, grantPerm("nope", authpb.Permission_READ, "b", "a"), ErrInvalidAuthMgmt},
		{RootUser, &pb.InternalRaftRequest{AuthRoleGrantPermission: &pb.AuthRoleGrantPermissionRequest{Name: "x"}}, ErrPermissionNotGiven},
	} {
		if err := h.apply(tc.user, tc.req); !errors.Is(err, tc.want) {
			t.Errorf("%v as %q: got %v, want %v", tc.req, tc.user, err, tc.want)
		}
	}
	if h.s.Revision() != rev {
		t.Fatalf("failed requests bumped the revision to %d", h.s.Revision())
	}
	h.must(userAdd("u", "pw"))
	if err := h.apply("u", roleAdd("x")); !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("non-root mutation: %v", err)
	}
	h.must(roleAdd("r"))
	h.must(grantRole("u", "r"))
	h.must(&pb.InternalRaftRequest{AuthRoleDelete: &pb.AuthRoleDeleteRequest{Role: "r"}})
	if roles, _ := h.s.UserRoles("u"); len(roles) != 0 {
		t.Fatalf("deleting role r left it on u: %v", roles)
	}
	if got := h.s.Revision(); got != rev+4 {
		t.Fatalf("revision %d after 4 changes from %d", got, rev)
	}
	h.must(&pb.InternalRaftRequest{AuthDisable: &pb.AuthDisableRequest{}})
	if en, r := h.s.Status(); en || r != rev+5 {
		t.Fatalf("after disable: %v %d", en, r)
	}
}

func TestPersistedAndReloaded(t *testing.T) {
	h := newHarness(t)
	h.enabled()
	h.must(roleAdd("r"))
	h.must(grantPerm("r", authpb.Permission_READ, "k", "\x00"))
	tok, err := h.s.Mint(RootUser, time.Now(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := Load(h.db)
	if err != nil {
		t.Fatal(err)
	}
	if en, rev := s2.Status(); !en || rev != h.s.Revision() {
		t.Fatalf("reloaded: enabled %v revision %d, want true %d", en, rev, h.s.Revision())
	}
	if got := s2.Roles(); len(got) != 1 || got[0] != "r" {
		t.Fatalf("reloaded roles %v", got)
	}
	if who, err := s2.Verify(tok, time.Now()); err != nil || who.User != RootUser {
		t.Fatalf("token after reload: %v %v", who, err)
	}
}

func TestTokens(t *testing.T) {
	h := newHarness(t)
	h.enabled()
	h.must(userAdd("u", "pw"))
	now := time.Unix(1_000_000, 0)
	tok, err := h.s.Mint("u", now, 300*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if who, err := h.s.Verify(tok, now.Add(299*time.Second)); err != nil || who.User != "u" || who.Revision != h.s.Revision() {
		t.Fatalf("fresh token: %v %v", who, err)
	}
	bad := []struct{ name, tok string }{
		{"empty", ""},
		{"garbage", "s1.zzz.yyy"},
		{"truncated mac", tok[:len(tok)-2]},
		{"tampered payload", tamper(tok, len(tokenPrefix)+20)},
		{"signed by another key", func() string {
			other := newHarness(t)
			other.enabled()
			other.must(userAdd("u", "pw"))
			t2, _ := other.s.Mint("u", now, time.Minute)
			return t2
		}()},
	}
	for _, b := range bad {
		if _, err := h.s.Verify(b.tok, now); !errors.Is(err, ErrInvalidAuthToken) {
			t.Errorf("%s: got %v", b.name, err)
		}
	}
	if _, err := h.s.Verify(tok, now.Add(300*time.Second)); !errors.Is(err, ErrInvalidAuthToken) {
		t.Errorf("expired: %v", err)
	}
	// An unrelated change keeps the token valid.
	h.must(roleAdd("r"))
	if _, err := h.s.Verify(tok, now); err != nil {
		t.Errorf("after an unrelated change: %v", err)
	}
	hp, _ := HashPassword("pw2", MinBcryptCost)
	h.must(&pb.InternalRaftRequest{AuthUserChangePassword: &pb.AuthUserChangePasswordRequest{Name: "u", HashedPassword: hp}})
	if _, err := h.s.Verify(tok, now); !errors.Is(err, ErrInvalidAuthToken) {
		t.Errorf("after a password change: %v", err)
	}
	tok2, _ := h.s.Mint("u", now, time.Minute)
	h.must(&pb.InternalRaftRequest{AuthUserDelete: &pb.AuthUserDeleteRequest{Name: "u"}})
	if _, err := h.s.Verify(tok2, now); !errors.Is(err, ErrInvalidAuthToken) {
		t.Errorf("after deleting the user: %v", err)
	}
	rt, _ := h.s.Mint(RootUser, now, time.Minute)
	h.must(&pb.InternalRaftRequest{AuthDisable: &pb.AuthDisableRequest{}})
	h.must(EnableRequest(NewKey()))
	if _, err := h.s.Verify(rt, now); !errors.Is(err, ErrInvalidAuthToken) {
		t.Errorf("after disable and enable (new key): %v", err)
	}
}

func TestCheckPassword(t *testing.T) {
	h := newHarness(t)
	if err := h.s.CheckPassword(RootUser, "x"); !errors.Is(err, ErrAuthNotEnabled) {
		t.Fatalf("disabled: %v", err)
	}
	h.enabled()
	h.must(&pb.InternalRaftRequest{AuthUserAdd: &pb.AuthUserAddRequest{Name: "cn", Options: &authpb.UserAddOptions{NoPassword: true}}})
	for _, tc := range []struct {
		user, pw string
		want     error
	}{
		{RootUser, "rootpw", nil},
		{RootUser, "wrong", ErrAuthFailed},
		{"ghost", "x", ErrAuthFailed},
		{"cn", "x", ErrNoPasswordUser},
	} {
		if err := h.s.CheckPassword(tc.user, tc.pw); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("%s/%s: got %v, want %v", tc.user, tc.pw, err, tc.want)
		}
	}
	if n := h.s.PasswordCacheLen(); n != 1 {
		t.Fatalf("cache holds %d entries after one success, want 1 (failures are never cached)", n)
	}
	// After a password change the remembered success must not match.
	hp, _ := HashPassword("new", MinBcryptCost)
	h.must(&pb.InternalRaftRequest{AuthUserChangePassword: &pb.AuthUserChangePasswordRequest{Name: RootUser, HashedPassword: hp}})
	if err := h.s.CheckPassword(RootUser, "rootpw"); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("old password after change: %v", err)
	}
	if err := h.s.CheckPassword(RootUser, "new"); err != nil {
		t.Fatalf("new password: %v", err)
	}
}

func TestPasswordCacheBounded(t *testing.T) {
	c := newPasswordCache(3)
	for i := 0; i < 10; i++ {
		c.add(c.key("u", string(rune('a'+i)), nil))
	}
	if len(c.ok) != 3 {
		t.Fatalf("cache of max 3 holds %d", len(c.ok))
	}
}

// tamper changes the base64 character at i.
func tamper(tok string, i int) string {
	b := []byte(tok)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// Verify never panics and accepts nothing but the tokens Mint made.
func FuzzVerify(f *testing.F) {
	db, err := pebble.Open("db", &pebble.Options{FS: vfs.NewMem()})
	if err != nil {
		f.Fatal(err)
	}
	defer db.Close()
	s, err := Load(db)
	if err != nil {
		f.Fatal(err)
	}
	hp, _ := HashPassword("pw", MinBcryptCost)
	for _, req := range []*pb.InternalRaftRequest{
		{AuthUserAdd: &pb.AuthUserAddRequest{Name: RootUser, HashedPassword: hp}},
		{AuthUserGrantRole: &pb.AuthUserGrantRoleRequest{User: RootUser, Role: RootRole}},
		EnableRequest(NewKey()),
	} {
		if _, reqErr, err := s.Apply(db.NewBatch(), req); err != nil || reqErr != nil {
			f.Fatal(reqErr, err)
		}
	}
	now := time.Unix(1_000_000, 0)
	good, err := s.Mint(RootUser, now, time.Minute)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add("s1..")
	f.Add("s1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.AAAA")
	f.Fuzz(func(t *testing.T, tok string) {
		who, err := s.Verify(tok, now)
		if err == nil && (tok != good || who.User != RootUser) {
			t.Fatalf("Verify accepted %q as %+v", tok, who)
		}
	})
}
