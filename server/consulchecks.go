package server

import (
	"context"

	"github.com/synod-db/synod/checkrunner"
	"github.com/synod-db/synod/consulapi"
)

// startConsulChecks runs the member's Consul health-check runner (package
// checkrunner) beside its Consul API until the member stops: it runs the
// checks of the member's node, and of a dead member's node when it is that
// node's heir, writing through the API's node-update path. TTL updates the
// API serves re-arm the runner's TTL timers. Call it before the API serves.
func (m *Member) startConsulChecks(api *consulapi.Server) {
	r := checkrunner.New(checkrunner.Config{Node: m.cfg.Name, Client: m.self, Store: api,
		Logger: m.log.With("duty", "consul-checks")})
	api.ObserveTTL(r.Touch)
	ctx, cancel := context.WithCancel(context.Background())
	m.bg.Add(2)
	go func() {
		defer m.bg.Done()
		<-m.stopped
		cancel()
	}()
	go func() {
		defer m.bg.Done()
		r.Run(ctx)
	}()
}
