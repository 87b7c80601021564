// Package checkrunner runs the Consul health checks of the catalog on a
// synod member: the I/O edge around package healthcheck's pure schedule.
// It probes HTTP, TCP and gRPC endpoints (Prober), keeps the member's
// runner key alive on an etcd lease, watches the catalog's checks and the
// other runners' keys, and writes a check's status through consulapi's
// node-update path only when it changes. See docs/discovery.md, "Health
// checks".
package checkrunner
