package server

import (
	"time"

	"github.com/cockroachdb/pebble"
	"go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/synod-db/synod/auth"
	"github.com/synod-db/synod/etcdapi"
	"github.com/synod-db/synod/raftnode"
)

// DefaultAuthTokenTTL is etcd's default --auth-token-ttl.
const DefaultAuthTokenTTL = 300 * time.Second

// AuthStore is the member's replicated auth state.
func (m *Member) AuthStore() *auth.Store { return m.auth }

// AuthOptions are the member's --bcrypt-cost, --auth-token-ttl and
// --client-cert-auth, with etcd's defaults.
func (m *Member) AuthOptions() etcdapi.AuthOptions {
	o := etcdapi.AuthOptions{BcryptCost: m.cfg.BcryptCost, TokenTTL: m.cfg.AuthTokenTTL, ClientCertAuth: m.cfg.ClientTLS.ClientCertAuth}
	if o.BcryptCost == 0 {
		o.BcryptCost = auth.DefaultBcryptCost
	}
	if o.TokenTTL == 0 {
		o.TokenTTL = DefaultAuthTokenTTL
	}
	return o
}

// registerAuthMetrics publishes the auth revision under etcd's name.
func (m *Member) registerAuthMetrics() {
	m.metrics.GaugeFunc("etcd_debugging_auth_revision", "The current revision of auth store.",
		func() float64 { return float64(m.auth.Revision()) })
}

// applyAuth applies a committed auth change in the entry's apply batch,
// identically on every member.
func (m *Member) applyAuth(index, term uint64, req *etcdserverpb.InternalRaftRequest) (raftnode.Result, error) {
	var res raftnode.Result
	err := m.store.ApplyOther(index, term, func(b *pebble.Batch) error {
		resp, reqErr, err := m.auth.Apply(b, req)
		res = raftnode.Result{Resp: resp, Err: reqErr}
		return err
	})
	if err != nil {
		return raftnode.Result{}, err
	}
	if res.Resp != nil {
		m.log.Info("auth changed", "revision", m.auth.Revision(), "by", req.GetHeader().GetUsername())
	}
	return res, nil
}

// authorizeApply is the apply-time check of etcd's auth applier: a Put,
// DeleteRange, Txn or LeaseRevoke is checked against the user its proposer
// stamped in the header, at the auth revision it was checked at there (a
// change since is auth.ErrAuthOldRevision). It depends only on replicated
// state and the entry, so every member answers alike.
func (m *Member) authorizeApply(req *etcdserverpb.InternalRaftRequest) error {
	who := auth.Info{User: req.GetHeader().GetUsername(), Revision: req.GetHeader().GetAuthRevision()}
	return m.auth.CheckRequest(who, req, func(id int64) ([][]byte, bool) {
		st, ok := m.lessor.Lookup(id, true)
		return st.Keys, ok
	})
}
