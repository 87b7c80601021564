package server

import (
	"context"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/synod-db/synod/alarm"
)

// dbSizeSampleInterval is how often the database size is sampled for the
// quota check and Status (a Pebble Metrics call is too costly per request).
const dbSizeSampleInterval = 200 * time.Millisecond

// AlarmGate is the state machine's alarm gate, for the API edge
// (etcdapi.Quota).
func (m *Member) AlarmGate(req *etcdserverpb.InternalRaftRequest) error { return m.sm.AlarmGate(req) }

// CheckQuota is etcd's quotaAlarmer: a request of cost bytes that would take
// the database's size in use over --quota-backend-bytes fails with
// alarm.ErrNoSpace, and this member raises the NOSPACE alarm through raft
// first. So does a request that would leave less than DiskReserveBytes free
// on the member's disk.
func (m *Member) CheckQuota(ctx context.Context, cost int) error {
	if alarm.Available(m.dbInUse.Load(), m.quota(), cost) && m.diskAvailable(cost) {
		return nil
	}
	m.log.Warn("request exceeds the backend quota; raising NOSPACE", "quota-bytes", m.quota(),
		"db-size-in-use-bytes", m.dbInUse.Load(), "disk-free-bytes", m.diskFree.Load(), "cost", cost)
	if !m.sm.Alarms().Active(etcdserverpb.AlarmType_NOSPACE) {
		// As etcd, the outcome of raising the alarm does not change the answer.
		_ = m.raiseAlarm(ctx, m.id, etcdserverpb.AlarmType_NOSPACE)
	}
	return alarm.ErrNoSpace
}

// quota is the effective --quota-backend-bytes: 0 means etcd's default (2
// GiB), a negative value disables the check, as in etcd.
func (m *Member) quota() int64 {
	if m.cfg.QuotaBackendBytes == 0 {
		return DefaultQuotaBackendBytes
	}
	return m.cfg.QuotaBackendBytes
}

// Alarm replicates an alarm request (GET included, as etcd) and returns the
// response applying it produced.
func (m *Member) Alarm(ctx context.Context, r *etcdserverpb.AlarmRequest) (*etcdserverpb.AlarmResponse, error) {
	resp, err := m.Propose(ctx, &etcdserverpb.InternalRaftRequest{Alarm: r})
	if err != nil {
		return nil, err
	}
	ar, ok := resp.(*etcdserverpb.AlarmResponse)
	if !ok {
		return nil, fmt.Errorf("server: alarm answered %T", resp)
	}
	return ar, nil
}

// raiseAlarm proposes alarm.ActivateRequest: a duty raising alarm t for
// member id.
func (m *Member) raiseAlarm(ctx context.Context, id uint64, t etcdserverpb.AlarmType) error {
	_, err := m.Propose(ctx, alarm.ActivateRequest(id, t))
	return err
}

// Alarms lists the raised alarms as applied on this member.
func (m *Member) Alarms() []*etcdserverpb.AlarmMember {
	return m.sm.Alarms().List(etcdserverpb.AlarmType_NONE)
}

// sampleDBSize refreshes the sampled database size (Pebble's whole disk
// usage) and size in use (inUseBytes), and sizes the block cache for it.
// The quota is checked against the size in use (see docs/maintenance.md).
func (m *Member) sampleDBSize() {
	mt := m.db.Metrics()
	m.dbSize.Store(int64(mt.DiskSpaceUsage()))
	inUse := inUseBytes(mt)
	m.dbInUse.Store(inUse)
	m.budget.resize(inUse)
	m.sampleDiskFree()
}

// inUseBytes is Pebble's disk usage less what is free space to Pebble:
//   - recycled WAL files (at most MemTableStopWritesThreshold+1 of them, kept
//     to be overwritten by new writes);
//   - the part of the current WAL file not yet written: a recycled file keeps
//     its old length when it becomes the current WAL, so right after a
//     rotation an empty WAL can occupy a whole memtable's worth of disk;
//   - tables that are obsolete or only wait for their last reader.
func inUseBytes(mt *pebble.Metrics) int64 {
	free := mt.WAL.ObsoletePhysicalSize + mt.Table.ZombieSize + mt.Table.ObsoleteSize
	if mt.WAL.PhysicalSize > mt.WAL.Size {
		free += mt.WAL.PhysicalSize - mt.WAL.Size
	}
	return max(int64(mt.DiskSpaceUsage())-int64(free), 0)
}
