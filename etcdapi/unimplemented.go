package etcdapi

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// unimplemented is the answer of an RPC synod does not serve yet; what names
// the service or method.
func unimplemented(what string) error {
	return status.Errorf(codes.Unimplemented, "synod: %s is not implemented yet", what)
}

// Services of the etcd v3 API that synod does not serve yet. Registering
// them lets a client see "synod: Auth is not implemented yet" instead of
// gRPC's "unknown service". The descriptions of the Lock and Election
// services (v3lockpb, v3electionpb) are written out here because their
// generated code lives in etcd's server module, which synod does not use.
var (
	lockServiceDesc = grpc.ServiceDesc{
		ServiceName: "v3lockpb.Lock",
		Methods:     []grpc.MethodDesc{{MethodName: "Lock"}, {MethodName: "Unlock"}},
	}
	electionServiceDesc = grpc.ServiceDesc{
		ServiceName: "v3electionpb.Election",
		Methods: []grpc.MethodDesc{
			{MethodName: "Campaign"}, {MethodName: "Proclaim"}, {MethodName: "Leader"}, {MethodName: "Resign"},
		},
		Streams: []grpc.StreamDesc{{StreamName: "Observe", ServerStreams: true}},
	}
)

// registerUnimplemented registers the services synod does not serve yet.
func registerUnimplemented(gs *grpc.Server) {
	for _, svc := range []struct {
		name string
		desc *grpc.ServiceDesc
	}{
		{"Auth", &pb.Auth_ServiceDesc},
		{"Lock", &lockServiceDesc},
		{"Election", &electionServiceDesc},
	} {
		d := unimplementedDesc(svc.desc, unimplemented(svc.name))
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
