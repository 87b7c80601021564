// Package catalog is Consul's service catalog as plain data: nodes, services
// and health checks in the JSON shapes of Consul's HTTP API, the keys they are
// stored under in synod's keyspace, the pure mutations that registrations,
// deregistrations and check updates make to one node's state, the diff that
// turns a mutation into the puts and deletes of one transaction, and health
// aggregation and filtering for the health endpoints. It does no I/O: package
// consulapi reads and writes the keys it names (docs/discovery.md).
package catalog
