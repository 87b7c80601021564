package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/snapshot"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"
	"go.uber.org/zap"

	"github.com/synod-db/synod/auth"
	"github.com/synod-db/synod/internal/testpki"
	"github.com/synod-db/synod/server"
	"github.com/synod-db/synod/tlsconfig"
)

// fastBcrypt keeps test password hashing cheap.
func fastBcrypt(c *server.Config) { c.BcryptCost = 4 }

// authClient is a client of the given members that authenticates as user.
func (c *cluster) authClient(user, password string, idx ...int) *clientv3.Client {
	c.t.Helper()
	var eps []string
	for _, i := range idx {
		eps = append(eps, c.endpoint(i))
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
		Username: user, Password: password})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cli.Close() })
	return cli
}

// tokenClient is a client of member i that presents token as is.
func (c *cluster) tokenClient(token string, i int) *clientv3.Client {
	c.t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{c.endpoint(i)}, DialTimeout: 5 * time.Second,
		Logger: zap.NewNop(), Token: token})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cli.Close() })
	return cli
}

// setupAuth creates root (root role) and alice (role reader: read on the
// key /a, read-write on the prefix /p/) through cli, with auth still off.
func setupAuth(t *testing.T, cli *clientv3.Client) {
	t.Helper()
	steps := []func() error{
		func() error { _, err := cli.UserAdd(ctx(t), "root", "rootpw"); return err },
		func() error { _, err := cli.RoleAdd(ctx(t), "reader"); return err },
		func() error {
			_, err := cli.RoleGrantPermission(ctx(t), "reader", "/a", "", clientv3.PermissionType(clientv3.PermRead))
			return err
		},
		func() error {
			_, err := cli.RoleGrantPermission(ctx(t), "reader", "/p/", clientv3.GetPrefixRangeEnd("/p/"), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := cli.UserAdd(ctx(t), "alice", "alicepw"); return err },
		func() error { _, err := cli.UserGrantRole(ctx(t), "alice", "reader"); return err },
	}
	for i, s := range steps {
		if err := s(); err != nil {
			t.Fatalf("setup step %d: %v", i, err)
		}
	}
	if _, err := cli.AuthEnable(ctx(t)); !errors.Is(err, rpctypes.ErrRootRoleNotExist) {
		t.Fatalf("enable while root lacks the root role: %v, want %v", err, rpctypes.ErrRootRoleNotExist)
	}
	if _, err := cli.UserGrantRole(ctx(t), "root", "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.AuthEnable(ctx(t)); err != nil {
		t.Fatal(err)
	}
}

func TestAuthEnableRequiresRoot(t *testing.T) {
	c := newCluster(t, 1, fastBcrypt)
	cli := c.client()
	if _, err := cli.AuthEnable(ctx(t)); !errors.Is(err, rpctypes.ErrRootUserNotExist) {
		t.Fatalf("enable without root: %v", err)
	}
	st, err := cli.AuthStatus(ctx(t))
	if err != nil || st.Enabled || st.AuthRevision != 1 {
		t.Fatalf("status of a new cluster: %v %v, want disabled at revision 1", st, err)
	}
	// A change answers with a whole header, as etcd: cluster, member, term, revision.
	ra, err := cli.RoleAdd(ctx(t), "r")
	if err != nil {
		t.Fatal(err)
	}
	if h := ra.Header; h == nil || h.ClusterId == 0 || h.MemberId == 0 || h.RaftTerm == 0 || h.Revision != 1 {
		t.Fatalf("role add header %v, want cluster, member, term and revision 1", h)
	}
}

func TestAuthPermissionsAcrossMembers(t *testing.T) {
	c := newCluster(t, 3, fastBcrypt)
	setupAuth(t, c.client())

	anon := c.client(0)
	if _, err := anon.Put(ctx(t), "/p/x", "v"); !errors.Is(err, rpctypes.ErrUserEmpty) {
		t.Fatalf("anonymous put: %v, want %v", err, rpctypes.ErrUserEmpty)
	}
	if _, err := anon.Authenticate(ctx(t), "alice", "wrong"); !errors.Is(err, rpctypes.ErrAuthFailed) {
		t.Fatalf("wrong password: %v", err)
	}

	alice := c.authClient("alice", "alicepw", 0)
	root := c.authClient("root", "rootpw", 1)
	if _, err := root.Put(ctx(t), "/a", "1"); err != nil {
		t.Fatal(err)
	}
	if r, err := alice.Get(ctx(t), "/a"); err != nil || len(r.Kvs) != 1 {
		t.Fatalf("alice reads /a: %v %v", r, err)
	}
	for name, op := range map[string]func() error{
		"write /a":  func() error { _, err := alice.Put(ctx(t), "/a", "2"); return err },
		"read /b":   func() error { _, err := alice.Get(ctx(t), "/b"); return err },
		"read all":  func() error { _, err := alice.Get(ctx(t), "/", clientv3.WithPrefix()); return err },
		"compact":   func() error { _, err := alice.Compact(ctx(t), 1); return err },
		"user list": func() error { _, err := alice.UserList(ctx(t)); return err },
	} {
		if err := op(); !errors.Is(err, rpctypes.ErrPermissionDenied) {
			t.Errorf("alice %s: %v, want permission denied", name, err)
		}
	}

	// A txn with one forbidden op is denied as a whole and leaves nothing.
	_, err := alice.Txn(ctx(t)).Then(clientv3.OpPut("/p/t1", "v"), clientv3.OpPut("/b", "v")).Commit()
	if !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Fatalf("txn with a forbidden put: %v", err)
	}
	_, err = alice.Txn(ctx(t)).If(clientv3.Compare(clientv3.Value("/b"), "=", "x")).Then(clientv3.OpPut("/p/t1", "v")).Commit()
	if !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Fatalf("txn comparing a forbidden key: %v", err)
	}
	if r, err := root.Get(ctx(t), "/p/t1"); err != nil || len(r.Kvs) != 0 {
		t.Fatalf("a denied txn left /p/t1: %v %v", r, err)
	}
	if _, err := alice.Txn(ctx(t)).Then(clientv3.OpPut("/p/t1", "v"), clientv3.OpGet("/a")).Commit(); err != nil {
		t.Fatalf("permitted txn: %v", err)
	}

	// A token minted by member 0 works on members 1 and 2 without a raft round.
	tok, err := anon.Authenticate(ctx(t), "alice", "alicepw")
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{1, 2} {
		if _, err := c.tokenClient(tok.Token, i).Put(ctx(t), fmt.Sprintf("/p/from-%d", i), "v"); err != nil {
			t.Fatalf("token of member 0 on member %d: %v", i, err)
		}
	}
	if _, err := c.tokenClient("s1.forged.token", 1).Get(ctx(t), "/a"); !errors.Is(err, rpctypes.ErrInvalidAuthToken) {
		t.Fatalf("forged token: %v", err)
	}

	// Revoking a permission takes effect at once, for a live token too.
	if _, err := root.RoleRevokePermission(ctx(t), "reader", "/a", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.tokenClient(tok.Token, 2).Get(ctx(t), "/a"); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Fatalf("read after the permission was revoked: %v", err)
	}

	// The token survives a restart of the member that verifies it.
	c.stop(2)
	c.start(2)
	c.waitLeader()
	if _, err := c.tokenClient(tok.Token, 2).Put(ctx(t), "/p/after-restart", "v"); err != nil {
		t.Fatalf("token after restart: %v", err)
	}

	// A changed password invalidates the token.
	if _, err := root.UserChangePassword(ctx(t), "alice", "newpw"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.tokenClient(tok.Token, 1).Put(ctx(t), "/p/x", "v"); !errors.Is(err, rpctypes.ErrInvalidAuthToken) {
		t.Fatalf("token after a password change: %v", err)
	}

	if _, err := root.AuthDisable(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := anon.Put(ctx(t), "/b", "v"); err != nil {
		t.Fatalf("anonymous put once auth is disabled: %v", err)
	}
}

// The Lock service runs its recipe with the caller's permissions.
func TestAuthLockRunsAsCaller(t *testing.T) {
	c := newCluster(t, 1, fastBcrypt)
	setupAuth(t, c.client())
	alice := c.authClient("alice", "alicepw", 0)
	lease, err := alice.Grant(ctx(t), 30)
	if err != nil {
		t.Fatal(err)
	}
	lc := v3lockpb.NewLockClient(alice.ActiveConnection())
	resp, err := lc.Lock(ctx(t), &v3lockpb.LockRequest{Name: []byte("/p/lock"), Lease: int64(lease.ID)})
	if err != nil {
		t.Fatalf("lock under /p/: %v", err)
	}
	if !strings.HasPrefix(string(resp.Key), "/p/lock/") {
		t.Fatalf("lock key %q", resp.Key)
	}
	_, err = lc.Lock(ctx(t), &v3lockpb.LockRequest{Name: []byte("/forbidden"), Lease: int64(lease.ID)})
	if !errors.Is(rpctypes.Error(err), rpctypes.ErrPermissionDenied) {
		t.Fatalf("lock outside alice's keys: %v, want permission denied", err)
	}
	// A watch of a forbidden range is refused as etcd refuses it: created
	// and canceled, the reason being the permission-denied status text.
	wctx, cancel := context2(t)
	defer cancel()
	wr := <-alice.Watch(wctx, "/b")
	if !wr.Canceled || wr.Err() == nil || !strings.Contains(wr.Err().Error(), rpctypes.ErrGRPCPermissionDenied.Error()) {
		t.Fatalf("watch of /b: canceled %v err %v", wr.Canceled, wr.Err())
	}
}

// With --client-cert-auth, a verified client certificate's common name is
// the user of a request without a token.
func TestAuthClientCertCommonName(t *testing.T) {
	dir := t.TempDir()
	ca, err := testpki.NewCA("auth test CA")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.crt")
	if err := testpki.WriteFile(caFile, ca.PEM); err != nil {
		t.Fatal(err)
	}
	issue := func(cn string) (string, string) {
		p, err := ca.Issue(cn, "127.0.0.1", "localhost")
		if err != nil {
			t.Fatal(err)
		}
		cert, key, err := p.Write(dir, cn)
		if err != nil {
			t.Fatal(err)
		}
		return cert, key
	}
	srvCert, srvKey := issue("server")
	c := newCluster(t, 1, func(cfg *server.Config) {
		fastBcrypt(cfg)
		for i, u := range cfg.ListenClientURLs {
			cfg.ListenClientURLs[i] = strings.Replace(u, "http://", "https://", 1)
		}
		cfg.AdvertiseClientURLs = append([]string(nil), cfg.ListenClientURLs...)
		cfg.ClientTLS = tlsconfig.Info{CertFile: srvCert, KeyFile: srvKey, TrustedCAFile: caFile, ClientCertAuth: true}
	})
	ep := strings.TrimPrefix(c.cfgs[0].AdvertiseClientURLs[0], "https://")
	certClient := func(cn string) *clientv3.Client {
		cert, key := issue(cn)
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(ca.PEM)
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
			TLS: &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Close() })
		return cli
	}
	root, carol := certClient("root"), certClient("carol")
	for _, step := range []func() error{
		func() error { _, err := root.UserAdd(ctx(t), "root", "rootpw"); return err },
		func() error { _, err := root.UserGrantRole(ctx(t), "root", "root"); return err },
		func() error {
			_, err := root.UserAddWithOptions(ctx(t), "carol", "", &clientv3.UserAddOptions{NoPassword: true})
			return err
		},
		func() error { _, err := root.RoleAdd(ctx(t), "c"); return err },
		func() error {
			_, err := root.RoleGrantPermission(ctx(t), "c", "/c/", clientv3.GetPrefixRangeEnd("/c/"), clientv3.PermissionType(clientv3.PermRead))
			return err
		},
		func() error { _, err := root.UserGrantRole(ctx(t), "carol", "c"); return err },
		func() error { _, err := root.AuthEnable(ctx(t)); return err },
		func() error { _, err := root.Put(ctx(t), "/c/k", "v"); return err }, // root by its certificate
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	if r, err := carol.Get(ctx(t), "/c/k"); err != nil || len(r.Kvs) != 1 {
		t.Fatalf("carol reads /c/k by certificate: %v %v", r, err)
	}
	if _, err := carol.Put(ctx(t), "/c/k", "w"); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Fatalf("carol writes /c/k: %v, want permission denied", err)
	}
	if _, err := certClient("mallory").Get(ctx(t), "/c/k"); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Fatalf("unknown CN reads: %v, want permission denied", err)
	}
}

// context2 is a cancellable context with the test deadline.
func context2(t *testing.T) (context.Context, context.CancelFunc) {
	return context.WithCancel(ctx(t))
}

// The auth state travels in raft snapshots (a member that lagged behind a
// truncated log catches up through one) and in backups restored with
// `synod snapshot restore`.
func TestAuthSurvivesSnapshotCatchUpAndRestore(t *testing.T) {
	c := newCluster(t, 3, func(cfg *server.Config) { fastBcrypt(cfg); cfg.SnapshotCount = 20 })
	lead := c.waitLeader()
	lag := (lead + 1) % 3
	other := 3 - lead - lag
	c.stop(lag)
	setupAuth(t, c.client(lead, other))
	root := c.authClient("root", "rootpw", lead, other)
	for i := 0; i < 100; i++ {
		if _, err := root.Put(ctx(t), fmt.Sprintf("/p/%03d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	c.start(lag)
	want := c.members[lead].AuthStore().Revision()
	deadline := time.Now().Add(15 * time.Second)
	for {
		en, rev := c.members[lag].AuthStore().Status()
		snaps := c.members[lag].RaftStats().SnapshotsInstalled
		if en && rev == want && snaps > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lagging member: auth enabled %v at revision %d (want %d), snapshots installed %d", en, rev, want, snaps)
		}
		time.Sleep(20 * time.Millisecond)
	}
	tok, err := c.client(lead).Authenticate(ctx(t), "alice", "alicepw")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.tokenClient(tok.Token, lag).Get(ctx(t), "/a", clientv3.WithSerializable()); err != nil {
		t.Fatalf("alice's token on the member that caught up by snapshot: %v", err)
	}

	file := filepath.Join(t.TempDir(), "backup.db")
	if _, err := snapshot.SaveWithVersion(ctx(t), zap.NewNop(), clientv3.Config{Endpoints: []string{c.endpoint(lead)},
		Username: "root", Password: "rootpw"}, file); err != nil {
		t.Fatalf("snapshot save as root: %v", err)
	}
	ports := freePorts(t, 2)
	cfg := server.NewConfig()
	cfg.Name, cfg.DataDir = "restored", filepath.Join(t.TempDir(), "restored")
	client, peer := fmt.Sprintf("http://127.0.0.1:%d", ports[0]), fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	cfg.ListenClientURLs, cfg.AdvertiseClientURLs = []string{client}, []string{client}
	cfg.ListenPeerURLs, cfg.InitialAdvertisePeerURLs = []string{peer}, []string{peer}
	cfg.HeartbeatInterval, cfg.ElectionTimeout = 10*time.Millisecond, 100*time.Millisecond
	if _, err := server.RestoreSnapshot(cfg, file, server.RestoreOptions{}); err != nil {
		t.Fatalf("restore: %v", err)
	}
	rc := &cluster{t: t, cfgs: []server.Config{cfg}, members: make([]*server.Member, 1)}
	rc.start(0)
	t.Cleanup(rc.stopAll)
	rc.waitLeader()
	if _, err := rc.client(0).Get(ctx(t), "/a"); !errors.Is(err, rpctypes.ErrUserEmpty) {
		t.Fatalf("anonymous read of the restored cluster: %v, want %v", err, rpctypes.ErrUserEmpty)
	}
	alice := rc.authClient("alice", "alicepw", 0)
	if _, err := alice.Get(ctx(t), "/a"); err != nil {
		t.Fatalf("alice reads /a after restore: %v", err)
	}
	if _, err := alice.Put(ctx(t), "/a", "x"); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Fatalf("alice writes /a after restore: %v", err)
	}
}

// Lease RPCs check the keys attached to the lease, as etcd.
func TestAuthLeases(t *testing.T) {
	c := newCluster(t, 1, fastBcrypt)
	setupAuth(t, c.client())
	if _, err := c.client(0).Grant(ctx(t), 30); !errors.Is(err, rpctypes.ErrUserEmpty) {
		t.Fatalf("anonymous grant: %v", err)
	}
	if _, err := c.client(0).Leases(ctx(t)); !errors.Is(err, rpctypes.ErrUserEmpty) {
		t.Fatalf("anonymous lease list (no leases yet): %v", err)
	}
	root := c.authClient("root", "rootpw", 0)
	alice := c.authClient("alice", "alicepw", 0)
	mine, err := alice.Grant(ctx(t), 30)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Put(ctx(t), "/p/k", "v", clientv3.WithLease(mine.ID)); err != nil {
		t.Fatal(err)
	}
	theirs, err := root.Grant(ctx(t), 30)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.Put(ctx(t), "/b", "v", clientv3.WithLease(theirs.ID)); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.KeepAliveOnce(ctx(t), mine.ID); err != nil {
		t.Fatalf("renewing her own lease: %v", err)
	}
	denied := map[string]func() error{
		"keep-alive": func() error { _, err := alice.KeepAliveOnce(ctx(t), theirs.ID); return err },
		"revoke":     func() error { _, err := alice.Revoke(ctx(t), theirs.ID); return err },
		"attach":     func() error { _, err := alice.Put(ctx(t), "/p/k2", "v", clientv3.WithLease(theirs.ID)); return err },
		"time-to-live with keys": func() error {
			_, err := alice.TimeToLive(ctx(t), theirs.ID, clientv3.WithAttachedKeys())
			return err
		},
		"leases": func() error { _, err := alice.Leases(ctx(t)); return err },
	}
	for name, op := range denied {
		if err := op(); !errors.Is(err, rpctypes.ErrPermissionDenied) {
			t.Errorf("alice %s on root's lease: %v, want permission denied", name, err)
		}
	}
	if _, err := alice.TimeToLive(ctx(t), theirs.ID); err != nil {
		t.Errorf("time-to-live without keys: %v", err)
	}
	if r, err := root.Get(ctx(t), "/b"); err != nil || len(r.Kvs) != 1 {
		t.Fatalf("root's leased key after alice's attempts: %v %v", r, err)
	}
	if _, err := alice.Revoke(ctx(t), mine.ID); err != nil {
		t.Fatalf("revoking her own lease: %v", err)
	}
	if r, err := root.Get(ctx(t), "/p/k"); err != nil || len(r.Kvs) != 0 {
		t.Fatalf("her revoked lease's key: %v %v", r, err)
	}
}

// An expired token is etcd's "invalid auth token", which clientv3 answers
// by authenticating again: a client with a user name and password never
// notices.
func TestAuthTokenExpiry(t *testing.T) {
	c := newCluster(t, 1, func(cfg *server.Config) { fastBcrypt(cfg); cfg.AuthTokenTTL = time.Second })
	setupAuth(t, c.client())
	alice := c.authClient("alice", "alicepw", 0)
	tok, err := c.client(0).Authenticate(ctx(t), "alice", "alicepw")
	if err != nil {
		t.Fatal(err)
	}
	raw := c.tokenClient(tok.Token, 0)
	if _, err := raw.Get(ctx(t), "/a"); err != nil {
		t.Fatalf("fresh token: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := raw.Get(ctx(t), "/a")
		if errors.Is(err, rpctypes.ErrInvalidAuthToken) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("token minted with a 1 s TTL still answers %v after 10 s", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// alice's own token expired too; her client re-authenticates.
	if _, err := alice.Put(ctx(t), "/p/after-expiry", "v"); err != nil {
		t.Fatalf("client with a password after its token expired: %v", err)
	}
}

// Every member checks a write again when it applies it, against the user
// and auth revision its proposer stamped: a stale revision is refused with
// etcd's ErrAuthOldRevision, a forbidden write with permission denied, and
// neither leaves anything. (Proposed past the API edge, which would have
// refused them first.)
func TestAuthCheckedOnApply(t *testing.T) {
	c := newCluster(t, 3, fastBcrypt)
	setupAuth(t, c.client())
	m := c.members[c.waitLeader()]
	rev := m.AuthStore().Revision()
	put := func(user string, authRev uint64, key string) error {
		_, err := m.Propose(ctx(t), &pb.InternalRaftRequest{
			Header: &pb.RequestHeader{Username: user, AuthRevision: authRev},
			Put:    &pb.PutRequest{Key: []byte(key), Value: []byte("v")},
		})
		return err
	}
	cases := []struct {
		user string
		rev  uint64
		key  string
		want error
	}{
		{"alice", rev - 1, "/p/old", auth.ErrAuthOldRevision},
		{"alice", rev, "/b", auth.ErrPermissionDenied},
		{"", 0, "/p/anon", auth.ErrUserEmpty},
		{"alice", rev, "/p/ok", nil},
		{"root", rev, "/b", nil},
	}
	for _, tc := range cases {
		if err := put(tc.user, tc.rev, tc.key); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("put %s as %q at auth revision %d: %v, want %v", tc.key, tc.user, tc.rev, err, tc.want)
		}
	}
	root := c.authClient("root", "rootpw", 0, 1, 2)
	r, err := root.Get(ctx(t), "/p/", clientv3.WithPrefix())
	if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Key) != "/p/ok" {
		t.Fatalf("keys under /p/ after the refused writes: %v %v, want only /p/ok", r, err)
	}
	// The same, proposed all at once and again and again, so that refused
	// and allowed writes are applied in one run (one storage batch).
	var wg sync.WaitGroup
	for round := 0; round < 20; round++ {
		for _, tc := range cases {
			wg.Add(1)
			go func() {
				defer wg.Done()
				key := fmt.Sprintf("%s/%02d", tc.key, round)
				if err := put(tc.user, tc.rev, key); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
					t.Errorf("concurrent put %s as %q at auth revision %d: %v, want %v", key, tc.user, tc.rev, err, tc.want)
				}
			}()
		}
	}
	wg.Wait()
	r, err = root.Get(ctx(t), "/p/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil || len(r.Kvs) != 21 {
		t.Fatalf("keys under /p/ after the concurrent writes: %d %v, want /p/ok and 20 under /p/ok/", len(r.Kvs), err)
	}
	for _, kv := range r.Kvs {
		if k := string(kv.Key); k != "/p/ok" && !strings.HasPrefix(k, "/p/ok/") {
			t.Fatalf("a refused write left %s", k)
		}
	}
}
