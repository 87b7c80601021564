package consulapi

import (
	"context"
	"net/http"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Consistency modes of a read, as X-Consul-Effective-Consistency names
// them.
const (
	modeDefault    = "leader"
	modeConsistent = "consistent"
	modeStale      = "stale"
)

// queryOptions are a read's query parameters (Consul's QueryOptions).
type queryOptions struct {
	index  uint64        // ?index: block until the answer's index is above it
	wait   time.Duration // ?wait: how long to block at most
	mode   string        // modeDefault, modeConsistent or modeStale
	filter string        // ?filter: a go-bexpr expression
}

// parseQuery reads ?index, ?wait, ?stale, ?consistent and ?filter with
// Consul's errors.
func parseQuery(r *http.Request) (queryOptions, error) {
	q := r.URL.Query()
	o := queryOptions{mode: modeDefault, filter: q.Get("filter")}
	if w := q.Get("wait"); w != "" {
		d, err := time.ParseDuration(w)
		if err != nil {
			return o, BadRequest("Invalid wait time")
		}
		o.wait = d
	}
	if i := q.Get("index"); i != "" {
		n, err := strconv.ParseUint(i, 10, 64)
		if err != nil {
			return o, BadRequest("Invalid index")
		}
		o.index = n
	}
	_, stale := q["stale"]
	_, consistent := q["consistent"]
	switch {
	case stale && consistent:
		return o, BadRequest("Cannot specify ?stale with ?consistent, conflicting semantics.")
	case stale:
		o.mode = modeStale
	case consistent:
		o.mode = modeConsistent
	case unsafeStaleDefault:
		o.mode = modeStale
	}
	return o, nil
}

// read runs ops as one read-only transaction: one consistent snapshot of
// the store. The default and ?consistent reads are linearizable (etcd's
// ReadIndex round); ?stale reads are served from this member's copy.
func (s *Server) read(ctx context.Context, mode string, ops ...clientv3.Op) (*clientv3.TxnResponse, error) {
	if mode == modeStale {
		for i, op := range ops {
			ops[i] = withSerializable(op)
		}
	}
	return s.cfg.KV.Txn(ctx).Then(ops...).Commit()
}

func withSerializable(op clientv3.Op) clientv3.Op {
	if !op.IsGet() || op.IsSerializable() {
		return op
	}
	opts := []clientv3.OpOption{clientv3.WithSerializable(), clientv3.WithLimit(op.Limit()), clientv3.WithRev(op.Rev())}
	if end := op.RangeBytes(); len(end) > 0 {
		opts = append(opts, clientv3.WithRange(string(end)))
	}
	if op.IsKeysOnly() {
		opts = append(opts, clientv3.WithKeysOnly())
	}
	if op.IsCountOnly() {
		opts = append(opts, clientv3.WithCountOnly())
	}
	return clientv3.OpGet(string(op.KeyBytes()), opts...)
}

// setMeta writes the headers of a read: X-Consul-Index (never 0: Consul
// sends 1 rather than let a client block on 0), X-Consul-KnownLeader,
// X-Consul-LastContact and X-Consul-Effective-Consistency.
func (s *Server) setMeta(w http.ResponseWriter, index uint64, mode string) {
	if index == 0 {
		index = 1
	}
	h := w.Header()
	h.Set("X-Consul-Index", strconv.FormatUint(index, 10))
	s.setLeaderMeta(w)
	h.Set("X-Consul-Effective-Consistency", mode)
}

// setLeaderMeta writes X-Consul-KnownLeader and X-Consul-LastContact. A
// linearizable read has confirmed the leader, so its last contact is 0; a
// stale one is reported as 0 too while a leader is known (an approximation:
// raft does not expose the time of the last append from the leader).
func (s *Server) setLeaderMeta(w http.ResponseWriter) {
	known := s.cfg.Raft.Leader() != 0
	w.Header().Set("X-Consul-KnownLeader", strconv.FormatBool(known))
	w.Header().Set("X-Consul-LastContact", "0")
}
