package server

import (
	"sync"
	"sync/atomic"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
)

// lifecycle is the member's start and stop: the stop signal, its
// background goroutines, and its removal from the cluster.
type lifecycle struct {
	stopOnce    sync.Once
	stopped     chan struct{} // closed by Stop
	bg          sync.WaitGroup
	removedOnce sync.Once
	removed     atomic.Bool
	joinPeers   []*etcdserverpb.Member // the membership a joining member fetched
}
