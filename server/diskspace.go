package server

import (
	"context"
	"fmt"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
)

// DiskReserveBytes is the free space a member keeps on the filesystems of
// its data and WAL directories. Pebble cannot go on after a failed WAL
// write (its commit pipeline stops for good, docs/verification.md#disk-faults),
// so a member must never let its own writes meet a full disk: below the
// reserve it refuses writes exactly as over its quota (NOSPACE, etcd's
// "database space exceeded") while reads, deletes, compactions and alarm
// requests go on. The reserve covers what the member still writes then: a
// memtable's flush and WAL rotation (8 MiB each), background compactions of
// recent tables, alarm entries, and the raft entries already in flight.
const DiskReserveBytes = 64 << 20

// diskFS is the filesystem the member's database lives on.
func (m *Member) diskFS() vfs.FS {
	if m.cfg.FS != nil {
		return m.cfg.FS
	}
	return vfs.Default
}

// sampleDiskFree records the least free space of the filesystems holding
// the data directory and the WAL directory, or -1 when it cannot be read
// (the disk check then passes, as no quota is better than a false one).
func (m *Member) sampleDiskFree() {
	free := int64(-1)
	for _, dir := range []string{m.cfg.DataDir, m.cfg.WALDir} {
		if dir == "" {
			continue
		}
		du, err := m.diskFS().GetDiskUsage(dir)
		if err != nil {
			continue
		}
		if avail := int64(min(du.AvailBytes, 1<<62)); free < 0 || avail < free {
			free = avail
		}
	}
	m.diskFree.Store(free)
}

// diskAvailable reports whether a request of cost bytes leaves the reserve
// free on disk. A request that adds nothing always passes.
func (m *Member) diskAvailable(cost int) bool {
	free := m.diskFree.Load()
	return cost == 0 || free < 0 || free-int64(cost) >= DiskReserveBytes
}

// sampleSpace is the member's periodic sample: the database's size, the free
// disk space, and NOSPACE raised through raft as soon as the free space is
// under the reserve, whether or not a client is writing through this member
// (writes proposed through other members land on this disk too; etcd's
// members likewise each raise NOSPACE from their own apply-time check).
func (m *Member) sampleSpace() {
	m.sampleDBSize()
	if m.diskAvailable(1) || m.sm.Alarms().Active(etcdserverpb.AlarmType_NOSPACE) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.requestTimeout())
	defer cancel()
	err := m.raiseAlarm(ctx, m.id, etcdserverpb.AlarmType_NOSPACE)
	if err == nil {
		m.log.Warn("free disk space is under the reserve; raised NOSPACE", "disk-free-bytes", m.diskFree.Load(),
			"disk-reserve-bytes", DiskReserveBytes, "data-dir", m.cfg.DataDir, "member-id", fmt.Sprintf("%x", m.id))
	}
}
