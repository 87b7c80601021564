package mvcc

import (
	"bytes"
	"context"
	"math"
	"sort"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// rangeOpts mirrors etcd's mvcc.RangeOptions (WithTotalCount is always on:
// the count of keys in range is computed in full, as etcd's KV API does).
type rangeOpts struct {
	limit        int64
	rev          int64
	countOnly    bool
	fastKeysOnly bool // keys_only without a VALUE sort: no value and no lease, as etcd's index path
}

// rangeResult mirrors etcd's mvcc.RangeResult.
type rangeResult struct {
	kvs   []*mvccpb.KeyValue
	count int
	rev   int64
}

// rangeKeys reads [key, end) at o.rev (<= 0: curRev) out of src. The result's
// rev is curRev, the revision the read view is at.
func rangeKeys(ctx context.Context, src iterSource, key, end []byte, curRev, compactRev int64, o rangeOpts) (*rangeResult, error) {
	rev := o.rev
	if rev > curRev {
		return nil, ErrFutureRev
	}
	if rev <= 0 {
		rev = curRev
	}
	if rev < compactRev {
		return nil, ErrCompacted
	}
	rr := &rangeResult{rev: curRev}
	// wantValue is whether the next live key is returned, not only counted.
	wantValue := func() bool { return !o.countOnly && (o.limit <= 0 || int64(len(rr.kvs)) < o.limit) }
	err := scan(ctx, src, key, end, rev, wantValue, func(vk, b []byte) error {
		rr.count++
		if !wantValue() {
			return nil
		}
		kv, err := decodeKV(vk, b)
		if err != nil {
			return err
		}
		if o.fastKeysOnly {
			kv.Value, kv.Lease = nil, 0
		}
		rr.kvs = append(rr.kvs, kv)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rr, nil
}

// executeRange evaluates a RangeRequest exactly as etcd's txn.executeRange:
// fetch (limit+1, or everything when sorting/filtering), filter, sort, truncate.
func executeRange(ctx context.Context, src iterSource, r *pb.RangeRequest, curRev, compactRev int64) (*pb.RangeResponse, error) {
	rr, err := rangeKeys(ctx, src, r.Key, r.RangeEnd, curRev, compactRev, rangeOpts{
		limit:        rangeLimit(r),
		rev:          r.Revision,
		countOnly:    r.CountOnly,
		fastKeysOnly: r.KeysOnly && r.SortTarget != pb.RangeRequest_VALUE,
	})
	if err != nil {
		return nil, err
	}
	filterRange(rr, r)
	sortRange(rr, r)
	return assembleRange(rr, r), nil
}

// rangeLimit is how many kvs to fetch: limit+1 to detect "more", or all of
// them when a sort or a revision filter must see everything first.
func rangeLimit(r *pb.RangeRequest) int64 {
	limit := r.Limit
	if !isDefaultOrdering(r.SortTarget, r.SortOrder) || hasRevisionFilters(r) {
		limit = 0
	}
	if limit > 0 && limit < math.MaxInt64 {
		limit++
	}
	return limit
}

// isDefaultOrdering reports whether results come out of the scan already in
// the requested order (by key, ascending).
func isDefaultOrdering(target pb.RangeRequest_SortTarget, order pb.RangeRequest_SortOrder) bool {
	return order == pb.RangeRequest_NONE || (target == pb.RangeRequest_KEY && order == pb.RangeRequest_ASCEND)
}

func hasRevisionFilters(r *pb.RangeRequest) bool {
	return r.MinModRevision != 0 || r.MaxModRevision != 0 || r.MinCreateRevision != 0 || r.MaxCreateRevision != 0
}

// filterRange applies the min/max mod/create revision filters.
func filterRange(rr *rangeResult, r *pb.RangeRequest) {
	if r.MaxModRevision != 0 {
		pruneKVs(rr, func(kv *mvccpb.KeyValue) bool { return kv.ModRevision > r.MaxModRevision })
	}
	if r.MinModRevision != 0 {
		pruneKVs(rr, func(kv *mvccpb.KeyValue) bool { return kv.ModRevision < r.MinModRevision })
	}
	if r.MaxCreateRevision != 0 {
		pruneKVs(rr, func(kv *mvccpb.KeyValue) bool { return kv.CreateRevision > r.MaxCreateRevision })
	}
	if r.MinCreateRevision != 0 {
		pruneKVs(rr, func(kv *mvccpb.KeyValue) bool { return kv.CreateRevision < r.MinCreateRevision })
	}
}

func pruneKVs(rr *rangeResult, prune func(*mvccpb.KeyValue) bool) {
	kept := rr.kvs[:0]
	for _, kv := range rr.kvs {
		if !prune(kv) {
			kept = append(kept, kv)
		}
	}
	rr.kvs = kept
}

// sortRange sorts like etcd: a non-KEY target with order NONE sorts ASCEND;
// sort.Sort with a Less on the target field only, so ties land exactly where
// etcd puts them.
func sortRange(rr *rangeResult, r *pb.RangeRequest) {
	order := r.SortOrder
	if r.SortTarget != pb.RangeRequest_KEY && order == pb.RangeRequest_NONE {
		order = pb.RangeRequest_ASCEND
	}
	if isDefaultOrdering(r.SortTarget, order) {
		return
	}
	var sorter sort.Interface
	switch r.SortTarget {
	case pb.RangeRequest_KEY:
		sorter = kvByKey{rr.kvs}
	case pb.RangeRequest_VERSION:
		sorter = kvByVersion{rr.kvs}
	case pb.RangeRequest_CREATE:
		sorter = kvByCreate{rr.kvs}
	case pb.RangeRequest_MOD:
		sorter = kvByMod{rr.kvs}
	case pb.RangeRequest_VALUE:
		sorter = kvByValue{rr.kvs}
	default:
		return // rejected at the API edge; etcd panics
	}
	switch order {
	case pb.RangeRequest_ASCEND:
		sort.Sort(sorter)
	case pb.RangeRequest_DESCEND:
		sort.Sort(sort.Reverse(sorter))
	}
}

// assembleRange truncates to the limit and builds the response.
func assembleRange(rr *rangeResult, r *pb.RangeRequest) *pb.RangeResponse {
	resp := &pb.RangeResponse{Header: &pb.ResponseHeader{Revision: rr.rev}}
	if r.Limit > 0 && int64(len(rr.kvs)) > r.Limit {
		rr.kvs = rr.kvs[:r.Limit]
		resp.More = true
	}
	resp.Count = int64(rr.count)
	resp.Kvs = make([]*mvccpb.KeyValue, len(rr.kvs))
	for i, kv := range rr.kvs {
		if r.KeysOnly {
			kv.Value = nil
		}
		resp.Kvs[i] = kv
	}
	return resp
}

type kvSlice []*mvccpb.KeyValue

func (s kvSlice) Len() int      { return len(s) }
func (s kvSlice) Swap(i, j int) { s[i], s[j] = s[j], s[i] }

type kvByKey struct{ kvSlice }

func (s kvByKey) Less(i, j int) bool { return bytes.Compare(s.kvSlice[i].Key, s.kvSlice[j].Key) < 0 }

type kvByVersion struct{ kvSlice }

func (s kvByVersion) Less(i, j int) bool { return s.kvSlice[i].Version-s.kvSlice[j].Version < 0 }

type kvByCreate struct{ kvSlice }

func (s kvByCreate) Less(i, j int) bool {
	return s.kvSlice[i].CreateRevision-s.kvSlice[j].CreateRevision < 0
}

type kvByMod struct{ kvSlice }

func (s kvByMod) Less(i, j int) bool { return s.kvSlice[i].ModRevision-s.kvSlice[j].ModRevision < 0 }

type kvByValue struct{ kvSlice }

func (s kvByValue) Less(i, j int) bool {
	return bytes.Compare(s.kvSlice[i].Value, s.kvSlice[j].Value) < 0
}
