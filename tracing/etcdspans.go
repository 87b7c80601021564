package tracing

import (
	"context"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
)

// EtcdScope is the instrumentation scope of the spans etcd's server starts
// inside an RPC's server span (range, put, txn, ...).
const EtcdScope = "go.etcd.io/etcd"

// etcdSpans starts, inside the server span of each unary KV and Lease call
// that etcd traces, the child span etcd's server starts for it, with the
// same name and attributes: a trace shows the same tree as etcd's.
func etcdSpans(tr trace.Tracer) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		name, attrs := etcdSpan(req)
		if name == "" {
			return handler(ctx, req)
		}
		ctx, span := tr.Start(ctx, name, trace.WithAttributes(attrs...))
		defer span.End()
		resp, err := handler(ctx, req)
		if g, ok := resp.(*etcdserverpb.LeaseGrantResponse); ok && req.(*etcdserverpb.LeaseGrantRequest).GetID() == 0 {
			span.SetAttributes(attribute.Int64("id", g.GetID())) // the ID the member picked, as etcd's span shows
		}
		return resp, err
	}
}

// etcdSpan names the span etcd starts for req and its attributes; "" for
// a request etcd starts none for.
func etcdSpan(req any) (string, []attribute.KeyValue) {
	switch r := req.(type) {
	case *etcdserverpb.RangeRequest:
		return "range", []attribute.KeyValue{attribute.String("range_begin", string(r.GetKey())),
			attribute.String("range_end", string(r.GetRangeEnd())), attribute.Int64("rev", r.GetRevision()),
			attribute.Int64("limit", r.GetLimit()), attribute.Bool("count_only", r.GetCountOnly()),
			attribute.Bool("keys_only", r.GetKeysOnly())}
	case *etcdserverpb.PutRequest:
		return "put", []attribute.KeyValue{attribute.String("key", string(r.GetKey()))}
	case *etcdserverpb.DeleteRangeRequest:
		return "delete_range", []attribute.KeyValue{attribute.String("range_begin", string(r.GetKey())),
			attribute.String("range_end", string(r.GetRangeEnd()))}
	case *etcdserverpb.TxnRequest:
		return "txn", txnAttributes(r)
	case *etcdserverpb.CompactionRequest:
		return "compact", []attribute.KeyValue{attribute.Bool("is_physical", r.GetPhysical()), attribute.Int64("rev", r.GetRevision())}
	case *etcdserverpb.LeaseGrantRequest:
		return "lease_grant", []attribute.KeyValue{attribute.Int64("id", r.GetID()), attribute.Int64("ttl", r.GetTTL())}
	case *etcdserverpb.LeaseRevokeRequest:
		return "lease_revoke", []attribute.KeyValue{attribute.Int64("id", r.GetID())}
	}
	return "", nil
}

// txnAttributes describes a txn by its first compared key, its first
// success operation and its sizes, as etcd does.
func txnAttributes(r *etcdserverpb.TxnRequest) []attribute.KeyValue {
	compareKey := ""
	for _, c := range r.GetCompare() {
		if len(c.GetKey()) > 0 {
			compareKey = string(c.GetKey())
			break
		}
	}
	opKey, opType, opLease := firstOp(r.GetSuccess())
	return []attribute.KeyValue{attribute.String("compare_first_key", compareKey),
		attribute.String("success_first_key", opKey), attribute.String("success_first_type", opType),
		attribute.Int64("success_first_lease", opLease), attribute.Int("compare_len", len(r.GetCompare())),
		attribute.Int("success_len", len(r.GetSuccess())), attribute.Int("failure_len", len(r.GetFailure())),
		attribute.Bool("read_only", readOnly(r))}
}

// firstOp returns the first non-empty key of ops' puts, ranges and
// deletes, the type of the first operation, and the lease of the first put
// (-1 without one).
func firstOp(ops []*etcdserverpb.RequestOp) (key, typ string, lease int64) {
	lease = -1
	leaseSeen := false
	for _, op := range ops {
		var k []byte
		switch x := op.GetRequest().(type) {
		case *etcdserverpb.RequestOp_RequestPut:
			k = x.RequestPut.GetKey()
			if !leaseSeen {
				lease, leaseSeen = x.RequestPut.GetLease(), true
			}
		case *etcdserverpb.RequestOp_RequestRange:
			k = x.RequestRange.GetKey()
		case *etcdserverpb.RequestOp_RequestDeleteRange:
			k = x.RequestDeleteRange.GetKey()
		}
		if key == "" && len(k) > 0 {
			key = string(k)
		}
		if typ == "" {
			typ = opType(op)
		}
	}
	return key, typ, lease
}

func opType(op *etcdserverpb.RequestOp) string {
	switch op.GetRequest().(type) {
	case *etcdserverpb.RequestOp_RequestPut:
		return "put"
	case *etcdserverpb.RequestOp_RequestRange:
		return "range"
	case *etcdserverpb.RequestOp_RequestDeleteRange:
		return "delete_range"
	case *etcdserverpb.RequestOp_RequestTxn:
		return "txn"
	}
	return ""
}

// readOnly reports whether every operation of r, on either branch, is a
// range.
func readOnly(r *etcdserverpb.TxnRequest) bool {
	for _, op := range append(append([]*etcdserverpb.RequestOp(nil), r.GetSuccess()...), r.GetFailure()...) {
		if op.GetRequestRange() == nil {
			return false
		}
	}
	return true
}
