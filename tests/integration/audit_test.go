package integration

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/synod-db/synod/internal/testpki"
	"github.com/synod-db/synod/server"
	"github.com/synod-db/synod/tlsconfig"
)

// auditLine is the part of an audit log line the tests check.
type auditLine struct {
	Time     string            `json:"time"`
	User     string            `json:"user"`
	Peer     string            `json:"peer"`
	RPC      string            `json:"rpc"`
	Key      string            `json:"key"`
	RangeEnd string            `json:"range_end"`
	Ops      []json.RawMessage `json:"ops"`
	Outcome  string            `json:"outcome"`
	Message  string            `json:"message"`
	Revision int64             `json:"revision"`
	Detail   string            `json:"detail"`
	Lease    int64             `json:"lease"`
	Name     string            `json:"name"`
}

// readAudit parses every line of an audit log.
func readAudit(t *testing.T, path string) []auditLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []auditLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l auditLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		if _, err := time.Parse(time.RFC3339Nano, l.Time); err != nil || !strings.HasSuffix(l.Time, "Z") {
			t.Fatalf("audit line %q: time is not RFC 3339 UTC: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

// TestAuditLogSession runs a scripted session through the real clientv3
// over mutual TLS against a member writing its audit log to a file, and
// checks the exact lines: one per mutating request, in order, with the
// certificate's common name, the key, the outcome and the revision; reads
// are not logged.
func TestAuditLogSession(t *testing.T) {
	dir := t.TempDir()
	ca, err := testpki.NewCA("audit-ca")
	if err != nil {
		t.Fatal(err)
	}
	srvPair, _ := ca.Issue("member", "127.0.0.1")
	cliPair, _ := ca.Issue("alice")
	srvCert, srvKey, err := srvPair.Write(dir, "server")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(caFile, ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "audit.log")
	port := freePorts(t, 1)[0]
	url := fmt.Sprintf("https://127.0.0.1:%d", port)
	c := newCluster(t, 1, func(cfg *server.Config) {
		cfg.ListenClientURLs, cfg.AdvertiseClientURLs = []string{url}, []string{url}
		cfg.ClientTLS = tlsconfig.Info{CertFile: srvCert, KeyFile: srvKey, TrustedCAFile: caFile, ClientCertAuth: true}
		cfg.AuditLog = logPath
	})
	pair, err := tls.X509KeyPair(cliPair.CertPEM, cliPair.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{url}, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
		TLS: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	cx := ctx(t)

	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(cli.Put(cx, "foo", "secret-value-1")) // rev 2
	must(cli.Get(cx, "foo"))                   // a read: not logged
	must(cli.Txn(cx).If(clientv3.Compare(clientv3.Value("foo"), "=", "secret-value-1")).
		Then(clientv3.OpPut("bar", "secret-value-2"), clientv3.OpDelete("nope")).Commit()) // rev 3
	must(cli.Txn(cx).Then(clientv3.OpGet("foo")).Commit())                            // read-only txn: not logged
	must(cli.Delete(cx, "x", clientv3.WithRange("z")))                                // deletes nothing: rev stays 3
	must(cli.Delete(cx, "foo"))                                                       // rev 4
	if _, err := cli.Put(cx, "leased", "v", clientv3.WithLease(0x1234)); err == nil { // refused
		t.Fatal("a put with an unknown lease succeeded")
	}
	must(cli.Compact(cx, 3))
	if _, err := cli.Compact(cx, 100); err == nil { // refused: future revision
		t.Fatal("compacting a future revision succeeded")
	}
	cli.Close()
	c.stopAll() // flushes the audit log

	want := []auditLine{
		{RPC: "/etcdserverpb.KV/Put", Key: "foo", Outcome: "OK", Revision: 2},
		{RPC: "/etcdserverpb.KV/Txn", Outcome: "OK", Revision: 3},
		{RPC: "/etcdserverpb.KV/DeleteRange", Key: "x", RangeEnd: "z", Outcome: "OK", Revision: 3},
		{RPC: "/etcdserverpb.KV/DeleteRange", Key: "foo", Outcome: "OK", Revision: 4},
		{RPC: "/etcdserverpb.KV/Put", Key: "leased", Lease: 0x1234, Outcome: "NotFound", Message: "etcdserver: requested lease not found"},
		{RPC: "/etcdserverpb.KV/Compact", Detail: "revision=3", Outcome: "OK", Revision: 4},
		{RPC: "/etcdserverpb.KV/Compact", Detail: "revision=100", Outcome: "OutOfRange", Message: "etcdserver: mvcc: required revision is a future revision"},
	}
	got := readAudit(t, logPath)
	if len(got) != len(want) {
		for _, l := range got {
			t.Logf("%+v", l)
		}
		t.Fatalf("%d audit lines, want %d", len(got), len(want))
	}
	for i, g := range got {
		if g.User != "alice" || !strings.HasPrefix(g.Peer, "127.0.0.1:") {
			t.Errorf("line %d: user %q peer %q, want alice from 127.0.0.1", i, g.User, g.Peer)
		}
		ops := g.Ops
		g.Time, g.User, g.Peer, g.Ops = "", "", "", nil
		if !reflect.DeepEqual(g, want[i]) {
			t.Errorf("line %d:\n got %+v\nwant %+v", i, g, want[i])
		}
		if g.RPC == "/etcdserverpb.KV/Txn" {
			if s := fmt.Sprintf("%s", ops); s != `[{"type":"put","key":"bar"} {"type":"delete_range","key":"nope"}]` {
				t.Errorf("txn ops %s", s)
			}
		}
	}
	raw, _ := os.ReadFile(logPath)
	if strings.Contains(string(raw), "secret-value") {
		t.Errorf("the audit log holds a value:\n%s", raw)
	}
}

// TestAuditLogAuthUser checks that with auth on, the audit log names the
// user a token identified, and records the auth decisions: a failed
// Authenticate, and a read and a write refused for want of permission.
func TestAuditLogAuthUser(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "audit.log")
	c := newCluster(t, 1, func(cfg *server.Config) { fastBcrypt(cfg); cfg.AuditLog = logPath })
	setupAuth(t, c.client(0))
	alice := c.authClient("alice", "alicepw", 0)
	if _, err := alice.Put(ctx(t), "/p/x", "v"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Put(ctx(t), "/a", "v"); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Fatalf("alice wrote /a: %v", err)
	}
	if _, err := alice.Get(ctx(t), "/b"); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Fatalf("alice read /b: %v", err)
	}
	if _, err := alice.Get(ctx(t), "/a"); err != nil { // allowed read: not logged
		t.Fatal(err)
	}
	if _, err := alice.Authenticate(ctx(t), "alice", "wrong"); !errors.Is(err, rpctypes.ErrAuthFailed) {
		t.Fatalf("authenticate with a wrong password: %v", err)
	}
	alice.Close()
	c.stopAll()

	type seen struct{ User, RPC, Key, Name, Outcome string }
	var got []seen
	for _, l := range readAudit(t, logPath) {
		if l.User == "alice" || l.Outcome != "OK" || l.Name == "alice" {
			got = append(got, seen{l.User, l.RPC, l.Key, l.Name, l.Outcome})
		}
	}
	want := []seen{
		{"", "/etcdserverpb.Auth/UserAdd", "", "alice", "OK"},
		{"", "/etcdserverpb.Auth/UserGrantRole", "", "alice", "OK"},
		{"", "/etcdserverpb.Auth/AuthEnable", "", "", "FailedPrecondition"}, // root lacks the root role
		{"", "/etcdserverpb.Auth/Authenticate", "", "alice", "OK"},
		{"alice", "/etcdserverpb.KV/Put", "/p/x", "", "OK"},
		{"alice", "/etcdserverpb.KV/Put", "/a", "", "PermissionDenied"},
		{"alice", "/etcdserverpb.KV/Range", "/b", "", "PermissionDenied"},
		{"alice", "/etcdserverpb.Auth/Authenticate", "", "alice", "InvalidArgument"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("audit lines of alice and refusals:\n got %+v\nwant %+v", got, want)
	}
}
