package etcdapi

import (
	"context"

	"go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// unimplemented is the answer of an RPC synod does not serve yet; what names
// the service or method.
func unimplemented(what string) error {
	return status.Errorf(codes.Unimplemented, "synod: %s is not implemented yet", what)
}

// Descriptions of the Lock and Election services, for answering
// Unimplemented when a member serves them without a client of itself.
var (
	lockServiceDesc     = v3lockpb.Lock_ServiceDesc
	electionServiceDesc = v3electionpb.Election_ServiceDesc
)

// registerUnimplemented registers the named services (Lock, Election),
// which synod does not serve on gs, so that a client sees "synod: Lock is
// not implemented yet" instead of gRPC's "unknown service".
func registerUnimplemented(gs *grpc.Server, names ...string) {
	descs := map[string]*grpc.ServiceDesc{
		"Lock": &lockServiceDesc, "Election": &electionServiceDesc,
	}
	for _, name := range names {
		d := unimplementedDesc(descs[name], unimplemented(name))
		gs.RegisterService(&d, nil)
	}
}

// unimplementedDesc returns a copy of desc whose every method and stream
// answers err without reading the request. Unary calls still pass through
// the server's interceptors, so they are logged like any other.
func unimplementedDesc(desc *grpc.ServiceDesc, err error) grpc.ServiceDesc {
	d := grpc.ServiceDesc{ServiceName: desc.ServiceName, HandlerType: desc.HandlerType, Metadata: desc.Metadata}
	for _, m := range desc.Methods {
		info := &grpc.UnaryServerInfo{FullMethod: "/" + desc.ServiceName + "/" + m.MethodName}
		answer := func(context.Context, any) (any, error) { return nil, err }
		d.Methods = append(d.Methods, grpc.MethodDesc{
			MethodName: m.MethodName,
			Handler: func(_ any, ctx context.Context, _ func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
				if ic == nil {
					return answer(ctx, nil)
				}
				return ic(ctx, nil, info, answer)
			},
		})
	}
	for _, s := range desc.Streams {
		s.Handler = func(any, grpc.ServerStream) error { return err }
		d.Streams = append(d.Streams, s)
	}
	return d
}
