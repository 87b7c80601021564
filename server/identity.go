package server

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/synod-db/synod/record"
)

// identityKey holds this member's identity: member ID and cluster ID. It is
// local to the member (prefix 0x03, outside the replicated keyspace) and
// written once, synced, when the data directory is created. Later starts
// read it and ignore the --initial-cluster flags, as etcd does.
var identityKey = []byte{0x03, 'i', 'd'}

type identity struct {
	memberID, clusterID uint64
}

var errNoIdentity = errors.New("no identity stored")

func readIdentity(db *pebble.DB) (identity, error) {
	v, closer, err := db.Get(identityKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return identity{}, errNoIdentity
	}
	if err != nil {
		return identity{}, err
	}
	defer closer.Close()
	p, err := record.Open(identityKey, v)
	if err != nil {
		return identity{}, fmt.Errorf("server: member identity: %w", err)
	}
	if len(p) != 16 {
		return identity{}, fmt.Errorf("server: member identity: %w: %d bytes", record.ErrCorrupt, len(p))
	}
	return identity{memberID: binary.BigEndian.Uint64(p), clusterID: binary.BigEndian.Uint64(p[8:])}, nil
}

func writeIdentity(db *pebble.DB, id identity) error {
	var p [16]byte
	binary.BigEndian.PutUint64(p[:], id.memberID)
	binary.BigEndian.PutUint64(p[8:], id.clusterID)
	return db.Set(identityKey, record.Seal(nil, identityKey, p[:]), pebble.Sync)
}
