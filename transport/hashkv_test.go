package transport

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// fakeHasher answers "hash:<req>", and fails the request "future".
type fakeHasher struct{}

func (fakeHasher) PeerHashKV(_ context.Context, req []byte) ([]byte, error) {
	if string(req) == "future" {
		return nil, errors.New("etcdserver: mvcc: required revision is a future revision")
	}
	return append([]byte("hash:"), req...), nil
}

func TestGRPCPeerHashKV(t *testing.T) {
	a := startMember(t, 1, testCluster, Config{})
	b := startMember(t, 2, testCluster, Config{Hasher: fakeHasher{}})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	if _, err := a.tr.PeerHashKV(ctx, 2, nil, []byte("x")); err == nil {
		t.Fatal("hash asked at no URL answered")
	}
	out, err := a.tr.PeerHashKV(ctx, 2, []string{"http://127.0.0.1:1", b.url}, []byte("x"))
	if err != nil || string(out) != "hash:x" {
		t.Fatalf("PeerHashKV (the first URL refuses): %q, %v", out, err)
	}
	_, err = a.tr.PeerHashKV(ctx, 2, []string{b.url}, []byte("future"))
	var re *RemoteError
	if !errors.As(err, &re) || re.Msg != "etcdserver: mvcc: required revision is a future revision" {
		t.Fatalf("remote error: %v, want the remote text intact", err)
	}

	// A member without a Hasher refuses; another cluster's member is refused.
	if _, err := b.tr.PeerHashKV(ctx, 1, []string{a.url}, nil); status.Code(errors.Unwrap(err)) != codes.Unimplemented {
		t.Fatalf("hash of a member that serves none: %v, want Unimplemented", err)
	}
	c := startMember(t, 3, 0xbad, Config{})
	if _, err := c.tr.PeerHashKV(ctx, 2, []string{b.url}, nil); status.Code(errors.Unwrap(err)) != codes.PermissionDenied {
		t.Fatalf("hash asked by another cluster: %v, want PermissionDenied", err)
	}
}
