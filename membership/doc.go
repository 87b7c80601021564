// Package membership holds the rules of cluster membership changes, as etcd
// applies them: which configuration changes are valid against the current
// members (validated when the change is applied, on every member alike),
// etcd's strict reconfiguration checks (refuse a change that would leave the
// cluster without a quorum of started, connected members), the learner
// readiness check before a promotion, and the errors each rule returns.
//
// It is pure: the members, the removed IDs, the peers' "active since" times
// and the clock are all inputs. The server package owns the state and the
// raft proposals; etcdapi maps these errors to etcd's gRPC statuses.
package membership
