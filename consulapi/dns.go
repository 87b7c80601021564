package consulapi

import (
	"context"

	"github.com/synod-db/synod/catalog"
)

// DNSCatalog is the catalog as the DNS interface reads it (it implements
// consuldns.Catalog), through the same read path as the HTTP API.
type DNSCatalog struct {
	s    *Server
	mode string
}

// DNSCatalog returns the DNS interface's view of the catalog: reads from
// this member's copy when stale (Consul's DNS default, allow_stale), else
// linearizable reads.
func (s *Server) DNSCatalog(stale bool) *DNSCatalog {
	mode := modeDefault
	if stale {
		mode = modeStale
	}
	return &DNSCatalog{s: s, mode: mode}
}

// ServiceInstances lists the instances of name with every tag, leaving out
// those with a critical check and, when onlyPassing, those with any check
// not passing (Consul's DNS filter).
func (c *DNSCatalog) ServiceInstances(ctx context.Context, name string, tags []string, onlyPassing bool) ([]*catalog.ServiceEntry, error) {
	_, es, err := c.s.readInstances(ctx, c.mode, name)
	if err != nil {
		return nil, err
	}
	var out []*catalog.ServiceEntry
	for _, e := range es {
		if !catalog.HasTags(e.Service, tags) || catalog.Aggregate(e.Checks) == catalog.StatusCritical {
			continue
		}
		if !onlyPassing || catalog.AllPassing(e.Checks) {
			out = append(out, e)
		}
	}
	return out, nil
}

// Node returns a node of the catalog, nil when there is none.
func (c *DNSCatalog) Node(ctx context.Context, name string) (*catalog.Node, error) {
	st, _, err := c.s.readNode(ctx, c.mode, name)
	if err != nil {
		return nil, err
	}
	return st.Node, nil
}

// Servers lists the synod members as catalog nodes (name and address), the
// domain's name servers.
func (c *DNSCatalog) Servers(ctx context.Context) ([]*catalog.Node, error) {
	ms, err := c.s.members(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*catalog.Node, 0, len(ms))
	for _, m := range ms {
		out = append(out, &catalog.Node{Node: m.Name, Address: m.Addr, Datacenter: c.s.cfg.Datacenter})
	}
	return out, nil
}

// Nodes lists every node of the catalog, by name: the reverse lookups'
// first candidates.
func (c *DNSCatalog) Nodes(ctx context.Context) ([]*catalog.Node, error) {
	_, resp, err := c.s.readTable(ctx, c.mode, catalog.IndexNodes, catalog.NodePrefix)
	if err != nil {
		return nil, err
	}
	return decodeAll[catalog.Node](resp.Responses[1])
}

// Instances lists every service instance (by name, then node), without
// their nodes or checks: the reverse lookups' second candidates.
func (c *DNSCatalog) Instances(ctx context.Context) ([]*catalog.Service, error) {
	_, resp, err := c.s.readTable(ctx, c.mode, catalog.IndexServices, catalog.ByNamePrefix)
	if err != nil {
		return nil, err
	}
	return decodeAll[catalog.Service](resp.Responses[1])
}
