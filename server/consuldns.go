package server

import (
	"github.com/synod-db/synod/consulapi"
	"github.com/synod-db/synod/consuldns"
)

// DNSConfig configures the member's Consul DNS interface
// (docs/discovery.md, "DNS").
type DNSConfig struct {
	// ListenAddr is the host:port served over UDP and TCP
	// (--dns-listen-addr); empty serves none.
	ListenAddr string
	// AllowStale answers from the member's copy of the catalog (Consul's
	// allow_stale, on by default); off, every answer is a linearizable read.
	AllowStale bool
	// Answers are the domain, TTLs, health filter and truncation; their
	// datacenter is --consul-datacenter.
	Answers consuldns.Config
	// Limits bound the server's work (the defaults when zero).
	Limits consuldns.Limits
}

// startConsulDNS serves Consul's DNS interface (--dns-listen-addr) over the
// catalog, through the member's client of itself; it closes when the
// member stops. It does nothing when no address is configured, and returns
// the error of a socket it cannot bind.
func (m *Member) startConsulDNS() error {
	c := m.cfg.DNS
	if c.ListenAddr == "" {
		return nil
	}
	log := m.log.With("api", "consul-dns")
	answers := c.Answers
	answers.Datacenter = m.consulDatacenter()
	cat := consulapi.New(m.consulAPIConfig()).DNSCatalog(c.AllowStale)
	srv, err := consuldns.Listen(c.ListenAddr, consuldns.NewHandler(answers, cat, c.Limits, log), c.Limits, log)
	if err != nil {
		return err
	}
	srv.Serve()
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		<-m.stopped
		srv.Close()
	}()
	m.log.Info("serving Consul DNS", "addr", srv.Addr(), "domain", answers.Domain, "stale", c.AllowStale)
	return nil
}
