package consulapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/synod-db/synod/catalog"
)

// maxWritesPerTxn bounds the documents one transaction writes, so that with
// their index keys it stays under etcd's default --max-txn-ops (128).
const maxWritesPerTxn = 32

// maxAttempts bounds the retries of a node write that lost its compare to a
// concurrent writer of the same node.
const maxAttempts = 32

// errConflict is returned when a node write lost its compare maxAttempts
// times in a row.
var errConflict = errors.New("catalog update kept conflicting with concurrent updates; try again")

// nodeOps are the reads of one node's whole state.
func nodeOps(node string) []clientv3.Op {
	return []clientv3.Op{
		clientv3.OpGet(catalog.NodeIndexKey(node)),
		clientv3.OpGet(catalog.NodeKey(node)),
		clientv3.OpGet(catalog.NodeServicesPrefix(node), clientv3.WithPrefix()),
		clientv3.OpGet(catalog.NodeChecksPrefix(node), clientv3.WithPrefix()),
	}
}

// readNode reads one node's state in one snapshot, with the mod revision of
// its index key (0 when the node has never been written) and the store
// revision of the read.
func (s *Server) readNode(ctx context.Context, mode, node string) (*catalog.NodeState, int64, error) {
	resp, err := s.read(ctx, mode, nodeOps(node)...)
	if err != nil {
		return nil, 0, err
	}
	st, idxRev, err := nodeFromTxn(node, resp.Responses)
	return st, idxRev, err
}

func nodeFromTxn(node string, rs []*etcdserverpb.ResponseOp) (*catalog.NodeState, int64, error) {
	st := catalog.NewNodeState(node)
	var idxRev int64
	if kvs := rs[0].GetResponseRange().Kvs; len(kvs) > 0 {
		idxRev = kvs[0].ModRevision
	}
	if kvs := rs[1].GetResponseRange().Kvs; len(kvs) > 0 {
		n, err := decodeDoc[catalog.Node](kvs[0])
		if err != nil {
			return nil, 0, err
		}
		st.Node = n
	}
	svcs, err := decodeAll[catalog.Service](rs[2])
	if err != nil {
		return nil, 0, err
	}
	for _, svc := range svcs {
		st.Services[svc.ID] = svc
	}
	checks, err := decodeAll[catalog.Check](rs[3])
	if err != nil {
		return nil, 0, err
	}
	for _, c := range checks {
		st.Checks[c.CheckID] = c
	}
	return st, idxRev, nil
}

// decodeDoc reads a stored document and gives it the key's revisions as its
// CreateIndex and ModifyIndex.
func decodeDoc[T catalog.Node | catalog.Service | catalog.Check](kv *mvccpb.KeyValue) (*T, error) {
	v := new(T)
	if err := json.Unmarshal(kv.Value, v); err != nil {
		return nil, fmt.Errorf("consulapi: stored document %q: %w", kv.Key, err)
	}
	c, m := uint64(kv.CreateRevision), uint64(kv.ModRevision)
	switch d := any(v).(type) {
	case *catalog.Node:
		d.CreateIndex, d.ModifyIndex = c, m
	case *catalog.Service:
		d.CreateIndex, d.ModifyIndex = c, m
	case *catalog.Check:
		d.CreateIndex, d.ModifyIndex = c, m
	}
	return v, nil
}

// decodeAll decodes every document of a range response, never nil.
func decodeAll[T catalog.Node | catalog.Service | catalog.Check](r *etcdserverpb.ResponseOp) ([]*T, error) {
	out := []*T{}
	for _, kv := range r.GetResponseRange().Kvs {
		v, err := decodeDoc[T](kv)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// updateNode is the one write path of the catalog: it reads the node's
// state (linearizably), applies mutate to a copy, and commits the diff in
// transactions that each compare the node's index key with the revision
// read (CAS), so concurrent writers of a node on any member never lose an
// update; a lost compare reads again and retries. A mutation that changes
// nothing writes nothing. Large diffs are cut into several transactions
// (each consistent, see catalog.Chunk).
func (s *Server) updateNode(ctx context.Context, node string, mutate func(*catalog.NodeState) error) error {
	for attempt := 0; attempt < maxAttempts; attempt++ {
		old, rev, err := s.readNode(ctx, modeConsistent, node)
		if err != nil {
			return err
		}
		next := old.Clone()
		if err := mutate(next); err != nil {
			return err
		}
		done, err := s.commit(ctx, node, rev, catalog.Diff(old, next))
		if err != nil || done {
			return err
		}
	}
	return errConflict
}

// commit writes the batches of a diff, each compared on the node's index
// key; it reports false when a compare failed (someone else wrote the node).
func (s *Server) commit(ctx context.Context, node string, rev int64, writes []catalog.Write) (bool, error) {
	idxKey := catalog.NodeIndexKey(node)
	for _, b := range catalog.Chunk(node, writes, maxWritesPerTxn) {
		var ops []clientv3.Op
		for _, w := range b.Writes {
			if w.Delete {
				ops = append(ops, clientv3.OpDelete(w.Key))
			} else {
				ops = append(ops, clientv3.OpPut(w.Key, string(w.Value)))
			}
		}
		for _, k := range b.Indexes {
			ops = append(ops, clientv3.OpPut(k, ""))
		}
		resp, err := s.cfg.KV.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(idxKey), "=", rev)).Then(ops...).Commit()
		if err != nil {
			return false, err
		}
		if !resp.Succeeded {
			return false, nil
		}
		rev = resp.Header.Revision
	}
	return true, nil
}

// modRev is the mod revision of the first key of a range response, 0 when
// there is none.
func modRev(r *etcdserverpb.ResponseOp) uint64 {
	if kvs := r.GetResponseRange().Kvs; len(kvs) > 0 {
		return uint64(kvs[0].ModRevision)
	}
	return 0
}
