package discovery

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3discovery"
	"go.uber.org/zap"
)

// ErrJoinExisting is v3 discovery asked for by a member joining a running
// cluster (--initial-cluster-state=existing), which etcd refuses.
var ErrJoinExisting = errors.New("discovery URL should not be set when joining existing initial cluster")

// V3 registers this member with etcd's v3 discovery service (an etcd or
// synod cluster at Config.Endpoints) under Config.Token, and waits until as
// many members as the size key the operator wrote
// (/_etcd/registry/<token>/_config/size) have registered. It is etcd's own
// v3discovery.JoinCluster, with etcd's retries (forever, backing off up to
// 256 s, while the service cannot be reached) and errors.
type V3 struct {
	Config v3discovery.DiscoveryConfig
	Logger *zap.Logger // nil: none
}

// Error is a failed v3 discovery, in etcd's words ("failed to join
// discovery cluster (...)"); Err is v3discovery's error.
type Error struct{ Err error }

// Error returns etcd's text.
func (e *Error) Error() string { return fmt.Sprintf("failed to join discovery cluster (%v)", e.Err) }

// Unwrap returns v3discovery's error (v3discovery.ErrFullCluster, ...).
func (e *Error) Unwrap() error { return e.Err }

// Discover registers self and returns the founding members once they have
// all registered, with the discovery token as the cluster token (member and
// cluster IDs derive from it, as in etcd). Its context is not consulted:
// etcd's JoinCluster blocks until it ends.
func (v V3) Discover(_ context.Context, self Self) (cluster, token string, err error) {
	if self.Existing {
		return "", "", ErrJoinExisting
	}
	urls, err := types.NewURLs(self.PeerURLs)
	if err != nil {
		return "", "", err
	}
	// etcd's member ID for self in the one-member cluster it starts from.
	id := types.ID(self.MemberID(urls.StringSlice(), v.Config.Token))
	selfCluster := self.Name + "=" + strings.Join(urls.StringSlice(), ","+self.Name+"=")
	cluster, err = v3discovery.JoinCluster(v.Logger, &v.Config, id, selfCluster)
	if err != nil {
		return "", "", &Error{Err: err}
	}
	urlsmap, err := types.NewURLsMap(cluster)
	if err != nil {
		return "", "", err
	}
	if hasDuplicateURL(urlsmap) {
		return "", "", fmt.Errorf("discovery cluster %s has duplicate url", urlsmap)
	}
	return cluster, v.Config.Token, nil
}

// hasDuplicateURL reports whether two members share a peer URL.
func hasDuplicateURL(m types.URLsMap) bool {
	seen := map[string]bool{}
	for _, urls := range m {
		for _, u := range urls {
			if seen[u.String()] {
				return true
			}
			seen[u.String()] = true
		}
	}
	return false
}
