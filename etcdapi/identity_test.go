package etcdapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/synod-db/synod/auth"
)

// authEdge is the edge of a fakeMember whose auth state is st, with
// --client-cert-auth as certAuth.
func authEdge(t *testing.T, st *auth.Store, certAuth bool) *edge {
	b := newFakeMember(t, Limits{}).backends()
	b.Auth, b.AuthOptions = st, AuthOptions{ClientCertAuth: certAuth, TokenTTL: time.Minute}
	return newEdge(b, slog.New(slog.DiscardHandler))
}

// enabledStore returns an auth store with root (root role) and user u, and
// auth enabled.
func enabledStore(t *testing.T) *auth.Store {
	t.Helper()
	db, err := pebble.Open("db", &pebble.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := auth.Load(db)
	if err != nil {
		t.Fatal(err)
	}
	hp, err := auth.HashPassword("pw", auth.MinBcryptCost)
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range []*pb.InternalRaftRequest{
		{AuthUserAdd: &pb.AuthUserAddRequest{Name: "root", HashedPassword: hp}},
		{AuthUserGrantRole: &pb.AuthUserGrantRoleRequest{User: "root", Role: "root"}},
		{AuthUserAdd: &pb.AuthUserAddRequest{Name: "u", Options: &authpb.UserAddOptions{NoPassword: true}}},
		auth.EnableRequest(auth.NewKey()),
	} {
		if _, reqErr, err := st.Apply(db.NewBatch(), req); err != nil || reqErr != nil {
			t.Fatalf("apply %v: %v %v", req, reqErr, err)
		}
	}
	return st
}

// tlsPeer is a context of a connection whose verified certificate is cn's.
func tlsPeer(ctx context.Context, cn string) context.Context {
	cert := &x509.Certificate{Subject: pkix.Name{CommonName: cn}}
	state := tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{cert}}}
	return peer.NewContext(ctx, &peer.Peer{AuthInfo: credentials.TLSInfo{State: state}})
}

func TestCallerIdentity(t *testing.T) {
	st := enabledStore(t)
	tok, err := st.Mint("root", time.Now(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	withToken := func(ctx context.Context, tok string) context.Context {
		return metadata.NewIncomingContext(ctx, metadata.Pairs("token", tok))
	}
	bearer := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+tok))
	for _, tc := range []struct {
		name     string
		certAuth bool
		ctx      context.Context
		user     string
		err      error
	}{
		{"anonymous", true, context.Background(), "", nil},
		{"token", false, withToken(context.Background(), tok), "root", nil},
		{"bearer token", false, bearer, "root", nil},
		{"bad token", true, withToken(tlsPeer(context.Background(), "u"), "s1.bad.token"), "", auth.ErrInvalidAuthToken},
		{"certificate", true, tlsPeer(context.Background(), "u"), "u", nil},
		{"certificate without --client-cert-auth", false, tlsPeer(context.Background(), "u"), "", nil},
		{"token wins over certificate", true, withToken(tlsPeer(context.Background(), "u"), tok), "root", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := authEdge(t, st, tc.certAuth)
			ctx := e.withCaller(tc.ctx)
			who, err := e.who(ctx)
			if !errors.Is(err, tc.err) || who.User != tc.user {
				t.Fatalf("who: %+v %v, want user %q err %v", who, err, tc.user, tc.err)
			}
			user, ok := UserFromContext(ctx)
			if user != tc.user || ok != (tc.user != "") {
				t.Fatalf("UserFromContext: %q %v, want %q", user, ok, tc.user)
			}
		})
	}
}

func TestForwardMintsTheCallersToken(t *testing.T) {
	st := enabledStore(t)
	e := authEdge(t, st, true)
	ctx, err := e.forward(e.withCaller(tlsPeer(context.Background(), "u")))
	if err != nil {
		t.Fatal(err)
	}
	md, _ := metadata.FromOutgoingContext(ctx)
	toks := md.Get("token")
	if len(toks) != 1 {
		t.Fatalf("forwarded metadata %v, want one token", md)
	}
	if who, err := st.Verify(toks[0], time.Now()); err != nil || who.User != "u" {
		t.Fatalf("forwarded token stands for %+v (%v), want u", who, err)
	}
	anon, err := e.forward(context.Background())
	if md, _ := metadata.FromOutgoingContext(anon); err != nil || len(md.Get("token")) != 0 {
		t.Fatalf("anonymous caller forwarded %v %v", md, err)
	}
}
