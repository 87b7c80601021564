package server

import "github.com/synod-db/synod/etcdapi"

// backends are the member's parts the API edge serves, assembled in this
// one place: a part the member lacks, or whose methods drift from what the
// edge needs, is a compile error here rather than a service answering
// Unimplemented.
func (m *Member) backends() etcdapi.Backends {
	return etcdapi.Backends{
		Raft:        m,
		KV:          m.sm.KV(),
		Member:      m,
		Quota:       m,
		Cluster:     m,
		Maintenance: m,
		Leases:      m.sm.Lessor(),
		LeaseGrants: m,
		Watch:       m.hub,
		Leader:      m,
		Auth:        m.sm.Auth(),
		AuthOptions: m.AuthOptions(),
	}
}
