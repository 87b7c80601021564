package consulapi

import (
	"context"
	"net/http"
	"sort"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/synod-db/synod/catalog"
)

func (s *Server) registerCatalog() {
	s.Handle("/v1/catalog/register", s.catalogRegister, http.MethodPut)
	s.Handle("/v1/catalog/deregister", s.catalogDeregister, http.MethodPut)
	s.Handle("/v1/catalog/datacenters", s.catalogDatacenters, http.MethodGet)
	s.Handle("/v1/catalog/nodes", s.catalogNodes, http.MethodGet)
	s.Handle("/v1/catalog/services", s.catalogServices, http.MethodGet)
	s.Handle("/v1/catalog/service/", s.catalogService, http.MethodGet)
	s.Handle("/v1/catalog/node/", s.catalogNode, http.MethodGet)
	s.Handle("/v1/catalog/node-services/", s.catalogNodeServices, http.MethodGet)
}

// registration is the body of /v1/catalog/register (Consul's
// api.CatalogRegistration).
type registration struct {
	ID, Node, Address, Datacenter string
	TaggedAddresses, NodeMeta     map[string]string
	Service                       *catalog.Service
	Check                         *catalog.Check
	Checks                        []*catalog.Check
	SkipNodeUpdate                bool
}

func (s *Server) catalogRegister(w http.ResponseWriter, r *http.Request) (any, error) {
	var reg registration
	if err := s.decodeBody(r, &reg); err != nil {
		return nil, err
	}
	if reg.Node == "" {
		return nil, BadRequest("Must provide node")
	}
	if reg.Address == "" && !reg.SkipNodeUpdate {
		return nil, BadRequest("Must provide address if SkipNodeUpdate is not set")
	}
	if reg.Service != nil && reg.Service.Service == "" {
		return nil, BadRequest("Must provide service name with ID")
	}
	err := s.updateNode(r.Context(), reg.Node, func(st *catalog.NodeState) error {
		return s.applyRegistration(st, &reg)
	})
	if err != nil {
		return nil, err
	}
	return true, nil
}

func (s *Server) applyRegistration(st *catalog.NodeState, reg *registration) error {
	lim := s.cfg.Limits.Catalog
	if !reg.SkipNodeUpdate || st.Node == nil {
		if reg.Address == "" {
			return BadRequest("Must provide address if SkipNodeUpdate is not set")
		}
		st.Node = &catalog.Node{ID: reg.ID, Node: reg.Node, Address: reg.Address, Datacenter: s.cfg.Datacenter,
			TaggedAddresses: reg.TaggedAddresses, Meta: reg.NodeMeta}
	}
	if svc := reg.Service; svc != nil {
		if svc.ID == "" {
			svc.ID = svc.Service
		}
		if svc.Weights == (catalog.Weights{}) {
			svc.Weights = catalog.Weights{Passing: 1, Warning: 1}
		}
		svc.Datacenter = ""
		if err := st.SetService(svc, st.ServiceChecks(svc.ID), nil, lim); err != nil {
			return err
		}
	}
	checks := reg.Checks
	if reg.Check != nil {
		checks = append([]*catalog.Check{reg.Check}, checks...)
	}
	for _, c := range checks {
		if c.CheckID == "" {
			c.CheckID = c.Name
		}
		if c.CheckID == "" {
			return BadRequest("Missing check ID")
		}
		if err := st.SetCheck(c, true, lim); err != nil {
			return err
		}
	}
	return nil
}

// deregistration is the body of /v1/catalog/deregister.
type deregistration struct {
	Node, Datacenter, ServiceID, CheckID string
}

func (s *Server) catalogDeregister(w http.ResponseWriter, r *http.Request) (any, error) {
	var d deregistration
	if err := s.decodeBody(r, &d); err != nil {
		return nil, err
	}
	if d.Node == "" {
		return nil, BadRequest("Must provide node")
	}
	err := s.updateNode(r.Context(), d.Node, func(st *catalog.NodeState) error {
		switch {
		case d.ServiceID != "":
			st.RemoveService(d.ServiceID)
		case d.CheckID != "":
			st.RemoveCheck(d.CheckID)
		default:
			st.RemoveNode()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return true, nil
}

func (s *Server) catalogDatacenters(w http.ResponseWriter, r *http.Request) (any, error) {
	return []string{s.cfg.Datacenter}, nil
}

// readTable reads an index key and every document under prefix: the
// index and the documents of a list endpoint.
func (s *Server) readTable(ctx context.Context, mode, indexKey, prefix string) (uint64, *clientv3.TxnResponse, error) {
	resp, err := s.read(ctx, mode, clientv3.OpGet(indexKey), clientv3.OpGet(prefix, clientv3.WithPrefix()))
	if err != nil {
		return 0, nil, err
	}
	return modRev(resp.Responses[0]), resp, nil
}

// readTableDocs is readTable for a prefix of one kind of document, decoded.
func readTableDocs[T catalog.Node | catalog.Service | catalog.Check](ctx context.Context, s *Server, mode, indexKey, prefix string) (uint64, []*T, error) {
	idx, resp, err := s.readTable(ctx, mode, indexKey, prefix)
	if err != nil {
		return 0, nil, err
	}
	docs, err := decodeAll[T](resp.Responses[1])
	return idx, docs, err
}

func (s *Server) catalogNodes(w http.ResponseWriter, r *http.Request) (any, error) {
	specs := []watchSpec{{key: catalog.IndexNodes}}
	meta := nodeMeta(r)
	return s.blockingQuery(w, r, specs, func(ctx context.Context, mode string) (uint64, any, error) {
		idx, all, err := readTableDocs[catalog.Node](ctx, s, mode, catalog.IndexNodes, catalog.NodePrefix)
		if err != nil {
			return 0, nil, err
		}
		out := []*catalog.Node{}
		for _, n := range all {
			if catalog.HasNodeMeta(n, meta) {
				out = append(out, n)
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
		res, err := filterMap(r, out)
		return idx, res, err
	})
}

// catalogServices maps each service name to the union of its instances'
// tags; ?node-meta keeps the instances of nodes with that metadata (then
// node changes count in the index too) and ?filter applies to the
// instances (in CatalogService's shape) before they are counted.
func (s *Server) catalogServices(w http.ResponseWriter, r *http.Request) (any, error) {
	meta := nodeMeta(r)
	specs := []watchSpec{{key: catalog.IndexServices}}
	ops := []clientv3.Op{clientv3.OpGet(catalog.IndexServices), clientv3.OpGet(catalog.ByNamePrefix, clientv3.WithPrefix())}
	if meta != nil {
		specs = append(specs, watchSpec{key: catalog.IndexNodes})
		ops = append(ops, clientv3.OpGet(catalog.IndexNodes), clientv3.OpGet(catalog.NodePrefix, clientv3.WithPrefix()))
	}
	return s.blockingQuery(w, r, specs, func(ctx context.Context, mode string) (uint64, any, error) {
		resp, err := s.read(ctx, mode, ops...)
		if err != nil {
			return 0, nil, err
		}
		idx := modRev(resp.Responses[0])
		nodes := map[string]*catalog.Node{}
		if meta != nil {
			idx = max(idx, modRev(resp.Responses[2]))
			all, err := decodeAll[catalog.Node](resp.Responses[3])
			if err != nil {
				return 0, nil, err
			}
			for _, n := range all {
				nodes[n.Node] = n
			}
		}
		insts, err := s.serviceInstances(r, resp.Responses[1], nodes, meta)
		if err != nil {
			return 0, nil, err
		}
		return idx, tagsByService(insts), nil
	})
}

// serviceInstances flattens the by-name documents of a range into
// CatalogServices (with their node's name, and its document when nodes has
// it), keeps those whose node has the metadata, and applies ?filter.
func (s *Server) serviceInstances(r *http.Request, rng *etcdserverpb.ResponseOp, nodes map[string]*catalog.Node, meta map[string]string) ([]*catalog.CatalogService, error) {
	var insts []*catalog.CatalogService
	for _, kv := range rng.GetResponseRange().Kvs {
		svc, err := decodeDoc[catalog.Service](kv)
		if err != nil {
			return nil, err
		}
		name := byNameNode(string(kv.Key), svc.Service)
		node := nodes[name]
		if node == nil {
			node = &catalog.Node{Node: name}
		}
		if catalog.HasNodeMeta(node, meta) {
			insts = append(insts, catalog.NewCatalogService(node, svc))
		}
	}
	return catalog.Filter(r.URL.Query().Get("filter"), insts)
}

// tagsByService maps each service name to the sorted union of its
// instances' tags.
func tagsByService(insts []*catalog.CatalogService) map[string][]string {
	tags := map[string]map[string]bool{}
	for _, in := range insts {
		if tags[in.ServiceName] == nil {
			tags[in.ServiceName] = map[string]bool{}
		}
		for _, t := range in.ServiceTags {
			tags[in.ServiceName][t] = true
		}
	}
	out := map[string][]string{}
	for name, set := range tags {
		out[name] = sortedSet(set)
	}
	return out
}

func sortedSet(set map[string]bool) []string {
	out := []string{}
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (s *Server) catalogService(w http.ResponseWriter, r *http.Request) (any, error) {
	tags := r.URL.Query()["tag"]
	return s.instancesQuery(w, r, "/v1/catalog/service/", func(es []*catalog.ServiceEntry) any {
		out := []*catalog.CatalogService{}
		for _, e := range es {
			if catalog.HasTags(e.Service, tags) {
				out = append(out, catalog.NewCatalogService(e.Node, e.Service))
			}
		}
		return out
	})
}

// catalogNodeAnswer is /v1/catalog/node/:node's answer (Consul's
// api.CatalogNode).
type catalogNodeAnswer struct {
	Node     *catalog.Node
	Services map[string]*catalog.Service
}

func (s *Server) catalogNode(w http.ResponseWriter, r *http.Request) (any, error) {
	return s.nodeQuery(w, r, "/v1/catalog/node/", func(st *catalog.NodeState) any {
		return &catalogNodeAnswer{Node: st.Node, Services: st.Services}
	})
}

// nodeServicesAnswer is /v1/catalog/node-services/:node's answer (Consul's
// api.CatalogNodeServiceList): the node's instances as a list.
type nodeServicesAnswer struct {
	Node     *catalog.Node
	Services []*catalog.Service
}

func (s *Server) catalogNodeServices(w http.ResponseWriter, r *http.Request) (any, error) {
	return s.nodeQuery(w, r, "/v1/catalog/node-services/", func(st *catalog.NodeState) any {
		return &nodeServicesAnswer{Node: st.Node, Services: st.SortedServices()}
	})
}

// nodeQuery answers a blocking query on the node named by the path after
// prefix: build turns its state into the answer; a node not registered is
// Consul's null.
func (s *Server) nodeQuery(w http.ResponseWriter, r *http.Request, prefix string, build func(*catalog.NodeState) any) (any, error) {
	node, err := requiredArg(r, prefix, "Missing node name")
	if err != nil {
		return nil, err
	}
	specs := []watchSpec{{key: catalog.NodeIndexKey(node)}}
	return s.blockingQuery(w, r, specs, func(ctx context.Context, mode string) (uint64, any, error) {
		st, rev, err := s.readNode(ctx, mode, node)
		if err != nil || st.Node == nil {
			return uint64(rev), nullJSON{}, err
		}
		return uint64(rev), build(st), nil
	})
}

// nullJSON is sent as the JSON null Consul answers for a missing node.
type nullJSON struct{}

// MarshalJSON writes null.
func (nullJSON) MarshalJSON() ([]byte, error) { return []byte("null"), nil }
