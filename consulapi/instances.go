package consulapi

import (
	"context"
	"errors"
	"net/http"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/synod-db/synod/catalog"
)

// maxOpsPerRead bounds the operations of one read transaction (etcd's
// default --max-txn-ops is 128).
const maxOpsPerRead = 100

// instanceSpecs are what a query on a service name's instances watches:
// the name's index key, and every node's node-level health.
func instanceSpecs(name string) []watchSpec {
	return []watchSpec{{key: catalog.NameIndexKey(name)}, {key: catalog.IndexNodeCheck, prefix: true}}
}

// readInstances reads every instance of a service name with its node and
// the checks that bear on it (its own and its node's), all at one revision.
// The index is the greatest mod revision of the name's index key and of the
// node-level index keys of the nodes in the answer. A compaction between
// the two reads makes it read again.
func (s *Server) readInstances(ctx context.Context, mode, name string) (uint64, []*catalog.ServiceEntry, error) {
	for attempt := 0; ; attempt++ {
		idx, es, err := s.readInstancesOnce(ctx, mode, name)
		if errors.Is(err, rpctypes.ErrCompacted) && attempt < 3 {
			continue
		}
		return idx, es, err
	}
}

func (s *Server) readInstancesOnce(ctx context.Context, mode, name string) (uint64, []*catalog.ServiceEntry, error) {
	resp, err := s.read(ctx, mode,
		clientv3.OpGet(catalog.NameIndexKey(name)),
		clientv3.OpGet(catalog.ByNamePrefixOf(name), clientv3.WithPrefix()),
		clientv3.OpGet(catalog.IndexNodeCheck, clientv3.WithPrefix()))
	if err != nil {
		return 0, nil, err
	}
	index := modRev(resp.Responses[0])
	nodeIdx := map[string]uint64{}
	for _, kv := range resp.Responses[2].GetResponseRange().Kvs {
		nodeIdx[string(kv.Key)] = uint64(kv.ModRevision)
	}
	type instance struct {
		node string
		svc  *catalog.Service
	}
	var insts []instance
	var nodes []string
	seen := map[string]bool{}
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		svc, err := decodeDoc[catalog.Service](kv)
		if err != nil {
			return 0, nil, err
		}
		node := byNameNode(string(kv.Key), name)
		insts = append(insts, instance{node, svc})
		if !seen[node] {
			seen[node] = true
			nodes = append(nodes, node)
			index = max(index, nodeIdx[catalog.NodeCheckIndexKey(node)])
		}
	}
	states, err := s.readNodesAt(ctx, nodes, resp.Header.Revision)
	if err != nil {
		return 0, nil, err
	}
	var out []*catalog.ServiceEntry
	byService := map[string]map[string][]*catalog.Check{} // node -> service ID -> checks
	for _, in := range insts {
		st, svc := states[in.node], in.svc
		if st == nil || st.Node == nil {
			continue
		}
		if byService[in.node] == nil {
			byService[in.node] = st.ChecksByService()
		}
		groups := byService[in.node]
		checks := append(append([]*catalog.Check(nil), groups[""]...), groups[svc.ID]...)
		out = append(out, &catalog.ServiceEntry{Node: st.Node, Service: svc, Checks: nonNil(checks)})
	}
	catalog.SortEntries(out)
	return index, out, nil
}

func nonNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}

// byNameNode is the node segment of a by-name key.
func byNameNode(key, name string) string {
	rest := key[len(catalog.ByNamePrefixOf(name)):]
	for i := 0; i < len(rest); i++ {
		if rest[i] == '/' {
			rest = rest[:i]
			break
		}
	}
	node, _ := catalog.NodeOfKey(catalog.NodePrefix + rest)
	return node
}

// readNodesAt reads the node document and checks of each node at revision
// rev (serializable reads of one past snapshot, in transactions of bounded
// size), keyed by node name.
func (s *Server) readNodesAt(ctx context.Context, nodes []string, rev int64) (map[string]*catalog.NodeState, error) {
	out := map[string]*catalog.NodeState{}
	const perNode = 2
	for start := 0; start < len(nodes); start += maxOpsPerRead / perNode {
		end := min(len(nodes), start+maxOpsPerRead/perNode)
		var ops []clientv3.Op
		for _, n := range nodes[start:end] {
			ops = append(ops,
				clientv3.OpGet(catalog.NodeKey(n), clientv3.WithRev(rev), clientv3.WithSerializable()),
				clientv3.OpGet(catalog.NodeChecksPrefix(n), clientv3.WithPrefix(), clientv3.WithRev(rev), clientv3.WithSerializable()))
		}
		resp, err := s.cfg.KV.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			return nil, err
		}
		for i, n := range nodes[start:end] {
			st := catalog.NewNodeState(n)
			if kvs := resp.Responses[perNode*i].GetResponseRange().Kvs; len(kvs) > 0 {
				if st.Node, err = decodeDoc[catalog.Node](kvs[0]); err != nil {
					return nil, err
				}
			}
			checks, err := decodeAll[catalog.Check](resp.Responses[perNode*i+1])
			if err != nil {
				return nil, err
			}
			for _, c := range checks {
				st.Checks[c.CheckID] = c
			}
			out[n] = st
		}
	}
	return out, nil
}

// filterMap applies ?filter to a map or slice answer.
func filterMap[T any](r *http.Request, v T) (any, error) {
	return catalog.Filter(r.URL.Query().Get("filter"), v)
}
