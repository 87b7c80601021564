package consulapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

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

// nodeOps are the reads of one node's whole state: its index key first,
// then its documents.
func nodeOps(node string) []clientv3.Op {
	return []clientv3.Op{
		clientv3.OpGet(catalog.NodeIndexKey(node)),
		clientv3.OpGet(catalog.NodeKey(node)),
		clientv3.OpGet(catalog.NodeServicesPrefix(node), clientv3.WithPrefix()),
		clientv3.OpGet(catalog.NodeChecksPrefix(node), clientv3.WithPrefix()),
	}
}

// checkOps are the reads of one check of a node: all a status update needs.
func checkOps(node, checkID string) []clientv3.Op {
	return []clientv3.Op{clientv3.OpGet(catalog.NodeIndexKey(node)), clientv3.OpGet(catalog.CheckKey(node, checkID))}
}

// readNode reads one node's state in one snapshot, with the mod revision of
// its index key (0 when the node has never been written).
func (s *Server) readNode(ctx context.Context, mode, node string) (*catalog.NodeState, int64, error) {
	st, _, rev, err := s.readNodeStored(ctx, mode, node, nodeOps(node))
	return st, rev, err
}

// readNodeStored reads a node's index key and the documents ops name (all
// of them with nodeOps), with their stored bytes by key, for a write's diff.
func (s *Server) readNodeStored(ctx context.Context, mode, node string, ops []clientv3.Op) (*catalog.NodeState, map[string][]byte, int64, error) {
	resp, err := s.read(ctx, mode, ops...)
	if err != nil {
		return nil, nil, 0, err
	}
	return nodeFromTxn(node, resp.Responses)
}

// nodeFromTxn builds a node's state from the responses of a read whose
// first op is the node's index key: every document is placed by its key.
func nodeFromTxn(node string, rs []*etcdserverpb.ResponseOp) (*catalog.NodeState, map[string][]byte, int64, error) {
	st := catalog.NewNodeState(node)
	docs := map[string][]byte{}
	nodeKey, svcs, checks := catalog.NodeKey(node), catalog.NodeServicesPrefix(node), catalog.NodeChecksPrefix(node)
	for _, r := range rs[1:] {
		for _, kv := range r.GetResponseRange().Kvs {
			key := string(kv.Key)
			docs[key] = kv.Value
			var err error
			switch {
			case key == nodeKey:
				st.Node, err = decodeDoc[catalog.Node](kv)
			case strings.HasPrefix(key, svcs):
				var svc *catalog.Service
				if svc, err = decodeDoc[catalog.Service](kv); err == nil {
					st.Services[svc.ID] = svc
				}
			case strings.HasPrefix(key, checks):
				var c *catalog.Check
				if c, err = decodeDoc[catalog.Check](kv); err == nil {
					st.Checks[c.CheckID] = c
				}
			}
			if err != nil {
				return nil, nil, 0, err
			}
		}
	}
	return st, docs, int64(modRev(rs[0])), nil
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
// state (linearizably), applies mutate to it, and commits the diff from the
// stored documents in transactions that each compare the node's index key
// with the revision read (CAS), so concurrent writers of a node on any
// member never lose an update; a lost compare reads again and retries. A
// mutation that changes nothing writes nothing. Large diffs are cut into
// several transactions (each consistent, see catalog.Chunk).
func (s *Server) updateNode(ctx context.Context, node string, mutate func(*catalog.NodeState) error) error {
	return s.update(ctx, node, nodeOps(node), mutate)
}

// updateCheck is updateNode for a mutation of one check alone (a status):
// it reads only that check, under the same compare.
func (s *Server) updateCheck(ctx context.Context, node, checkID string, mutate func(*catalog.NodeState) error) error {
	return s.update(ctx, node, checkOps(node, checkID), mutate)
}

// update is updateNode over the part of the node that ops read; mutate
// sees only that part, and only what it changes there is written.
func (s *Server) update(ctx context.Context, node string, ops []clientv3.Op, mutate func(*catalog.NodeState) error) error {
	for attempt := 0; attempt < maxAttempts; attempt++ {
		st, docs, rev, err := s.readNodeStored(ctx, modeConsistent, node, ops)
		if err != nil {
			return err
		}
		stored := catalog.Remember(st, docs)
		if err := mutate(st); err != nil {
			return err
		}
		done, err := s.commit(ctx, node, rev, catalog.DiffFrom(stored, st))
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
