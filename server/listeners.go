package server

import (
	"net"
	"sync/atomic"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
)

// listeners are the member's network edge: the client, peer and metrics
// listeners, the gRPC servers on them, the HTTP endpoints, the TLS
// configurations and the in-memory listener of the member's client of
// itself.
type listeners struct {
	clientSrv    *grpc.Server
	peerSrv      *grpc.Server
	clientLns    []net.Listener
	clientSec    []bool // clientLns[i] is https://: terminate TLS in the splitter
	tls          memberTLS
	peerLns      []net.Listener
	metricLns    []net.Listener   // --listen-metrics-urls: HTTP endpoints only
	web          webFace          // HTTP: the gateway, /health, /metrics, ...
	selfLn       *pipeListener    // in-memory listener for self
	self         *clientv3.Client // this member's client of itself (Lock, Election)
	refusedConns []*atomic.Uint64 // per client listener: connections over --max-client-connections
}
