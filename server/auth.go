package server

import (
	"time"

	"github.com/synod-db/synod/auth"
	"github.com/synod-db/synod/etcdapi"
)

// DefaultAuthTokenTTL is etcd's default --auth-token-ttl.
const DefaultAuthTokenTTL = 300 * time.Second

// AuthStore is the member's replicated auth state.
func (m *Member) AuthStore() *auth.Store { return m.sm.Auth() }

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
		func() float64 { return float64(m.sm.Auth().Revision()) })
}
