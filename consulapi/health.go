package consulapi

import (
	"context"
	"net/http"
	"sort"

	"github.com/synod-db/synod/catalog"
)

func (s *Server) registerHealth() {
	s.Handle("/v1/health/service/", s.healthService, http.MethodGet)
	s.Handle("/v1/health/checks/", s.healthChecks, http.MethodGet)
	s.Handle("/v1/health/node/", s.healthNode, http.MethodGet)
	s.Handle("/v1/health/state/", s.healthState, http.MethodGet)
}

// healthService lists a service's instances with their nodes and checks;
// ?passing leaves out instances with any check not passing, ?tag (repeated)
// keeps those with every tag, ?filter applies a go-bexpr expression, and
// ?near is accepted and ignored (synod keeps no network coordinates).
func (s *Server) healthService(w http.ResponseWriter, r *http.Request) (any, error) {
	tags := r.URL.Query()["tag"]
	passing, err := boolParam(r, catalog.StatusPassing)
	if err != nil {
		return nil, err
	}
	return s.instancesQuery(w, r, "/v1/health/service/", func(es []*catalog.ServiceEntry) any {
		out := []*catalog.ServiceEntry{}
		for _, e := range es {
			if catalog.HasTags(e.Service, tags) && (!passing || catalog.AllPassing(e.Checks)) {
				out = append(out, e)
			}
		}
		return out
	})
}

// instancesQuery answers a blocking query over the instances of the
// service named by the path after prefix: build turns them into the
// answer, to which ?filter then applies; ?node-meta keeps the instances of
// nodes with that metadata.
func (s *Server) instancesQuery(w http.ResponseWriter, r *http.Request, prefix string, build func([]*catalog.ServiceEntry) any) (any, error) {
	name, err := requiredArg(r, prefix, "Missing service name")
	if err != nil {
		return nil, err
	}
	meta := nodeMeta(r)
	return s.blockingQuery(w, r, instanceSpecs(name), func(ctx context.Context, mode string) (uint64, any, error) {
		idx, es, err := s.readInstances(ctx, mode, name)
		if err != nil {
			return 0, nil, err
		}
		res, err := filterMap(r, build(keepNodeMeta(es, meta)))
		return idx, res, err
	})
}

// boolParam reads a flag parameter as Consul does: present with no value
// (or a value strconv.ParseBool reads as true) is true.
func boolParam(r *http.Request, name string) (bool, error) {
	vs, ok := r.URL.Query()[name]
	if !ok {
		return false, nil
	}
	switch v := vs[0]; v {
	case "", "1", "t", "T", "true", "TRUE", "True":
		return true, nil
	case "0", "f", "F", "false", "FALSE", "False":
		return false, nil
	default:
		return false, BadRequest("Invalid value for ?%s", name)
	}
}

func (s *Server) healthChecks(w http.ResponseWriter, r *http.Request) (any, error) {
	return s.instancesQuery(w, r, "/v1/health/checks/", func(es []*catalog.ServiceEntry) any {
		out := []*catalog.Check{}
		for _, e := range es {
			for _, c := range e.Checks {
				if c.ServiceID == e.Service.ID {
					out = append(out, c)
				}
			}
		}
		return out
	})
}

func (s *Server) healthNode(w http.ResponseWriter, r *http.Request) (any, error) {
	node, err := requiredArg(r, "/v1/health/node/", "Missing node name")
	if err != nil {
		return nil, err
	}
	specs := []watchSpec{{key: catalog.NodeIndexKey(node)}}
	return s.blockingQuery(w, r, specs, func(ctx context.Context, mode string) (uint64, any, error) {
		st, rev, err := s.readNode(ctx, mode, node)
		if err != nil {
			return 0, nil, err
		}
		res, err := filterMap(r, st.SortedChecks())
		return uint64(rev), res, err
	})
}

// healthState lists the checks in a state (any, passing, warning,
// critical); as in Consul, another state matches no check.
func (s *Server) healthState(w http.ResponseWriter, r *http.Request) (any, error) {
	state, err := requiredArg(r, "/v1/health/state/", "Missing check state")
	if err != nil {
		return nil, err
	}
	specs := []watchSpec{{key: catalog.IndexChecks}}
	return s.blockingQuery(w, r, specs, func(ctx context.Context, mode string) (uint64, any, error) {
		idx, all, err := readTableDocs[catalog.Check](ctx, s, mode, catalog.IndexChecks, catalog.CheckPrefix)
		if err != nil {
			return 0, nil, err
		}
		out := []*catalog.Check{}
		for _, c := range all {
			if state == catalog.StatusAny || c.Status == state {
				out = append(out, c)
			}
		}
		sort.SliceStable(out, func(i, j int) bool { return out[i].Node < out[j].Node })
		res, err := filterMap(r, out)
		return idx, res, err
	})
}
