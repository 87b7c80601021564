package server

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/synod-db/synod/etcdapi"
	"github.com/synod-db/synod/transport"
)

// Keep-alives received by a follower are renewed in the leader's renewal
// entries (etcdapi.Renewer): the follower's renewer hands each batch to
// the leader over the peer service's RenewLeases, which this file encodes.
//
// Request: a marshaled etcdserverpb.LeaseCheckpointRequest, the entry's
// checkpoints (each lease once, Remaining_TTL its granted TTL). Answer: the
// IDs of the leases the leader's entry found missing, as a packed repeated
// int64 in field 1 (empty when every lease was renewed).

// newRenewer is the member's renewer: it hands a follower's batches to the
// leader through the transport.
func (m *Member) newRenewer() *etcdapi.Renewer {
	return etcdapi.NewRenewer(etcdapi.RenewerConfig{Raft: m, Leader: m, Self: m.id, Forwarder: m,
		Timeout: m.requestTimeout()})
}

// LeaseRenewals counts the member's renewal entries and the batches it
// handed to its leader or took from its followers.
func (m *Member) LeaseRenewals() etcdapi.RenewerStats { return m.renewer.Stats() }

// peerRenewals is what serves the renewals followers hand over: the
// member, or nil (Unimplemented) if it refuses them.
func (m *Member) peerRenewals() transport.Renewals {
	if m.cfg.RefusePeerRenewals {
		return nil
	}
	return m
}

// ForwardRenewals hands cps to leader's renewer (etcdapi.RenewalForwarder).
func (m *Member) ForwardRenewals(ctx context.Context, leader uint64, cps *etcdserverpb.LeaseCheckpointRequest) ([]int64, error) {
	body, err := proto.Marshal(cps)
	if err != nil {
		return nil, err
	}
	out, err := m.tr.RenewLeases(ctx, leader, body)
	if errors.Is(err, transport.ErrUnimplemented) {
		return nil, fmt.Errorf("%w: %w", etcdapi.ErrRenewalsNotServed, err)
	}
	if err != nil {
		return nil, err
	}
	return decodeMissing(out)
}

// PeerRenewLeases renews a follower's batch in this member's next renewal
// entry (transport.Renewals) and answers with the leases it found missing.
func (m *Member) PeerRenewLeases(ctx context.Context, body []byte) ([]byte, error) {
	var req etcdserverpb.LeaseCheckpointRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		return nil, fmt.Errorf("server: decode lease renewals: %w", err)
	}
	missing, err := m.renewer.RenewForPeer(ctx, req.GetCheckpoints())
	if err != nil {
		return nil, err
	}
	return encodeMissing(missing), nil
}

// encodeMissing encodes ids as the packed repeated int64 field 1.
func encodeMissing(ids []int64) []byte {
	if len(ids) == 0 {
		return nil
	}
	var packed []byte
	for _, id := range ids {
		packed = protowire.AppendVarint(packed, uint64(id))
	}
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	return protowire.AppendBytes(b, packed)
}

// errBadRenewalAnswer: the leader's answer to a batch does not decode.
var errBadRenewalAnswer = errors.New("server: malformed answer to lease renewals")

// decodeMissing decodes encodeMissing's bytes.
func decodeMissing(b []byte) ([]int64, error) {
	var ids []int64
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num != 1 || typ != protowire.BytesType {
			return nil, errBadRenewalAnswer
		}
		b = b[n:]
		packed, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil, errBadRenewalAnswer
		}
		b = b[n:]
		for len(packed) > 0 {
			v, n := protowire.ConsumeVarint(packed)
			if n < 0 {
				return nil, errBadRenewalAnswer
			}
			ids, packed = append(ids, int64(v)), packed[n:]
		}
	}
	return ids, nil
}
