// Package etcdapi serves the etcd v3 gRPC API at the edge of a synod member,
// byte-compatibly enough that etcdctl and clientv3 work unchanged.
//
// The package is the only place where a client request meets synod. Each
// service lives in its own file (kv.go, maintenance.go, cluster.go,
// unimplemented.go) and follows the same three steps:
//
//  1. validate the request purely, without I/O and in etcd's order, returning
//     etcd's own gRPC errors (validate.go);
//  2. reach the member through its Backends, one small interface per
//     concern (backends.go): writes are proposed through raft (Raft.Propose),
//     linearizable reads wait for a read index (Raft.ReadIndex) and then read
//     the local store (KV);
//  3. map any error to a gRPC status exactly once (toGRPCError in errors.go,
//     one table from synod's sentinels to etcd's rpctypes errors) and fill the
//     response header the way etcd does.
//
// NewGRPCServer assembles a *grpc.Server with these services over a
// complete Backends (a missing backend is refused, never served as
// Unimplemented), the standard gRPC health service, a logging hook and a
// recovery interceptor that turns a handler panic into codes.Internal
// instead of tearing down the process.
package etcdapi
