package server

import (
	"errors"
	"testing"

	"go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/synod-db/synod/membership"
)

func TestCheckPeerURLs(t *testing.T) {
	cases := []struct {
		urls []string
		ok   bool
	}{
		{[]string{"http://127.0.0.1:2380"}, true},
		{[]string{"https://a:1", "unix://sock:1"}, true},
		{nil, false},
		{[]string{"127.0.0.1:2380"}, false},
		{[]string{"http://h:1/path"}, false},
		{[]string{"ftp://h:1"}, false},
		{[]string{"http://h:1", "not a url"}, false},
	}
	for _, tc := range cases {
		err := checkPeerURLs(tc.urls)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, membership.ErrBadPeerURLs)) {
			t.Errorf("%v: %v", tc.urls, err)
		}
	}
}

func TestFindByPeerURLs(t *testing.T) {
	ms := []*etcdserverpb.Member{
		{ID: 1, PeerURLs: []string{"http://a:1"}},
		{ID: 2, PeerURLs: []string{"http://c:1", "http://b:1"}},
	}
	if m := findByPeerURLs(ms, []string{"http://b:1", "http://c:1"}); m == nil || m.ID != 2 {
		t.Fatalf("found %v", m)
	}
	if m := findByPeerURLs(ms, []string{"http://b:1"}); m != nil {
		t.Fatalf("a partial match found %v", m)
	}
}
