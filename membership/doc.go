// Package membership holds the rules of cluster membership changes, as etcd
// applies them: which configuration changes are valid against the current
// members (validated when the change is applied, on every member alike),
// etcd's strict reconfiguration checks (refuse a change that would leave the
// cluster without a quorum of started, connected members), the learner
// readiness check before a promotion, and the errors each rule returns.
//
// The rules are pure: the members, the removed IDs, the peers' "active
// since" times and the clock are all inputs. Store is the replicated
// membership itself (members, removed IDs, rejected conf changes under
// prefixes 0x20, 0x28 and 0x29), which package statemachine writes in its
// apply batches; the server makes the raft proposals, and etcdapi maps
// these errors to etcd's gRPC statuses.
package membership
