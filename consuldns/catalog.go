package consuldns

import (
	"context"

	"github.com/synod-db/synod/catalog"
)

// Catalog is what the DNS interface reads: one implementation, over the
// Consul API's read path (consulapi.Server.DNSCatalog).
type Catalog interface {
	// ServiceInstances lists the instances of a service name that carry
	// every tag (compared without case), leaving out those with a critical
	// check and, when onlyPassing, those with any check not passing.
	ServiceInstances(ctx context.Context, name string, tags []string, onlyPassing bool) ([]*catalog.ServiceEntry, error)
	// Node returns a node by name, nil (and no error) when there is none.
	Node(ctx context.Context, name string) (*catalog.Node, error)
	// Servers lists the nodes of the servers (the synod members): the
	// domain's name servers.
	Servers(ctx context.Context) ([]*catalog.Node, error)
	// Nodes lists every node, by name (reverse lookups).
	Nodes(ctx context.Context) ([]*catalog.Node, error)
	// Instances lists every service instance without its node or checks
	// (reverse lookups of service addresses).
	Instances(ctx context.Context) ([]*catalog.Service, error)
}
