package server

import (
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
	"time"
)

// MemberID computes a member's ID exactly as etcd does: the first 8 bytes of
// sha1(sorted peer URLs joined, cluster token, [unix time]). Identical IDs
// mean etcd tooling and synod agree on who is who.
func MemberID(peerURLs []string, token string, now *time.Time) uint64 {
	urls := append([]string(nil), peerURLs...)
	sort.Strings(urls)
	b := []byte(strings.Join(urls, ""))
	b = append(b, token...)
	if now != nil {
		b = append(b, fmt.Sprintf("%d", now.Unix())...)
	}
	h := sha1.Sum(b)
	return binary.BigEndian.Uint64(h[:8])
}

// ClusterID computes the cluster ID from the founding members' IDs as etcd
// does: the first 8 bytes of sha1 over the sorted IDs, big-endian.
func ClusterID(memberIDs []uint64) uint64 {
	ids := append([]uint64(nil), memberIDs...)
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	b := make([]byte, 8*len(ids))
	for i, id := range ids {
		binary.BigEndian.PutUint64(b[8*i:], id)
	}
	h := sha1.Sum(b)
	return binary.BigEndian.Uint64(h[:8])
}

// ids are a member's identity once loaded (loadIdentity).
type ids struct {
	id        uint64 // this member's ID
	clusterID uint64
}
