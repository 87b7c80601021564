package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/synod-db/synod/consulapi"
)

// ConsulConfig configures the member's Consul HTTP API.
type ConsulConfig struct {
	// ListenURL is where the API is served (--consul-listen-url, an
	// http:// URL); empty serves none.
	ListenURL string
	// Datacenter is the datacenter the member's agent reports
	// (--consul-datacenter, default "dc1").
	Datacenter string
}

// consulRaft gives the API the member's raft identity and leader.
type consulRaft struct{ m *Member }

func (r consulRaft) ID() uint64     { return r.m.id }
func (r consulRaft) Leader() uint64 { return r.m.node.Leader() }

// StartConsul serves the Consul API (--consul-listen-url) on its own
// listener, through the member's client of itself, and registers the
// member's node in the catalog once the member serves; the API closes when
// the member stops. It also starts Consul's DNS interface when configured
// (server/consuldns.go). Call it once, after Start. It does nothing when no
// URL is configured, and returns the error of a listener it cannot bind.
func (m *Member) StartConsul() error {
	if err := m.startConsulDNS(); err != nil {
		return err
	}
	if m.cfg.Consul.ListenURL == "" {
		return nil
	}
	u, err := url.Parse(m.cfg.Consul.ListenURL)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("server: --consul-listen-url %q: want an http:// URL", m.cfg.Consul.ListenURL)
	}
	ln, err := net.Listen("tcp", u.Host)
	if err != nil {
		return fmt.Errorf("server: listen on %s: %w", m.cfg.Consul.ListenURL, err)
	}
	api := consulapi.New(m.consulAPIConfig())
	m.startConsulChecks(api)
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 30 * time.Second}
	m.bg.Add(4)
	go func() {
		defer m.bg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.log.Error("Consul API stopped", "err", err)
		}
	}()
	go func() {
		defer m.bg.Done()
		<-m.stopped
		srv.Close()
	}()
	go func() {
		defer m.bg.Done()
		m.registerConsulSelf(api)
	}()
	go func() {
		defer m.bg.Done()
		m.runUntilStopped(api.RunSessions)
	}()
	m.log.Info("serving Consul API", "url", m.cfg.Consul.ListenURL, "datacenter", m.consulDatacenter())
	return nil
}

// consulAPIConfig is the member as a Consul agent, over its client of
// itself.
func (m *Member) consulAPIConfig() consulapi.Config {
	return consulapi.Config{Datacenter: m.consulDatacenter(), NodeName: m.cfg.Name,
		NodeID: nodeUUID(m.id), NodeAddress: m.advertisedHost(), KV: m.self, Watcher: m.self, Lease: m.self, Cluster: m.self,
		Raft: consulRaft{m}, Logger: m.log.With("api", "consul")}
}

// runUntilStopped runs duty with a context that ends when the member stops.
func (m *Member) runUntilStopped(duty func(context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-m.stopped:
			cancel()
		case <-ctx.Done():
		}
	}()
	duty(ctx)
}

// registerConsulSelf registers the member's node until it succeeds or the
// member stops.
func (m *Member) registerConsulSelf(api *consulapi.Server) {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), m.requestTimeout())
		go func() {
			select {
			case <-m.stopped:
				cancel()
			case <-ctx.Done():
			}
		}()
		err := api.RegisterSelf(ctx)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-m.stopped:
			return
		case <-time.After(m.cfg.HeartbeatInterval * 5):
		}
	}
}

func (m *Member) consulDatacenter() string {
	if m.cfg.Consul.Datacenter == "" {
		return "dc1"
	}
	return m.cfg.Consul.Datacenter
}

// advertisedHost is the host of the member's first advertised client URL:
// its node's address in the catalog.
func (m *Member) advertisedHost() string {
	for _, raw := range m.cfg.AdvertiseClientURLs {
		if u, err := url.Parse(raw); err == nil && u.Hostname() != "" {
			return u.Hostname()
		}
	}
	return "127.0.0.1"
}

// nodeUUID is the member's Consul node ID: a UUID-shaped digest of its
// member ID, stable across restarts.
func nodeUUID(id uint64) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("synod-member-%016x", id)))
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}
