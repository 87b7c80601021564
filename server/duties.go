package server

import "sync/atomic"

// duties hold what the member's background duties sample and the slots
// that bound its costly requests.
type duties struct {
	dbSize   atomic.Int64 // sampled database size (sampleDBSize)
	dbInUse  atomic.Int64 // sampled size of live data
	diskFree atomic.Int64 // sampled free disk space (diskspace.go)

	backupSlots chan struct{} // snapshots staged for clients (maxConcurrentBackups)
	hashSlot    chan struct{} // one peer HashKV computed at a time (PeerHashKV)
	hashChecked atomic.Int64  // newest compaction hash found alike on every member
}

// newDuties returns the duties' state with its slots free.
func newDuties() duties {
	return duties{backupSlots: make(chan struct{}, maxConcurrentBackups), hashSlot: make(chan struct{}, 1)}
}
