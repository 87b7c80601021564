package server

import "github.com/synod-db/synod/etcdapi"

// backends are the member's parts the API edge serves, assembled in this
// one place: a part the member lacks, or whose methods drift from what the
// edge needs, is a compile error here rather than a service answering
// Unimplemented.
func (m *Member) backends() etcdapi.Backends {
	return etcdapi.Backends{
		Raft:        m,
		KV:          m.store,
		Member:      m,
		Quota:       m,
		Cluster:     m,
		Maintenance: m,
		Leases:      m.lessor,
		LeaseGrants: m,
		Watch:       m.hub,
		Leader:      m,
		Auth:        m.auth,
		AuthOptions: m.AuthOptions(),
	}
}
