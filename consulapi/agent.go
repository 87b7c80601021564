package consulapi

import (
	"context"
	"net/http"

	"github.com/synod-db/synod/catalog"
)

func (s *Server) registerAgent() {
	s.Handle("/v1/agent/service/register", s.agentServiceRegister, http.MethodPut)
	s.Handle("/v1/agent/service/deregister/", s.agentServiceDeregister, http.MethodPut)
	s.Handle("/v1/agent/services", s.agentServices, http.MethodGet)
	s.Handle("/v1/agent/service/", s.agentService, http.MethodGet)
	s.Handle("/v1/agent/checks", s.agentChecks, http.MethodGet)
	s.Handle("/v1/agent/check/register", s.agentCheckRegister, http.MethodPut)
	s.Handle("/v1/agent/check/deregister/", s.agentCheckDeregister, http.MethodPut)
	s.Handle("/v1/agent/check/pass/", s.agentCheckTTL("/v1/agent/check/pass/", catalog.StatusPassing), http.MethodPut)
	s.Handle("/v1/agent/check/warn/", s.agentCheckTTL("/v1/agent/check/warn/", catalog.StatusWarning), http.MethodPut)
	s.Handle("/v1/agent/check/fail/", s.agentCheckTTL("/v1/agent/check/fail/", catalog.StatusCritical), http.MethodPut)
	s.Handle("/v1/agent/check/update/", s.agentCheckUpdate, http.MethodPut)
	s.Handle("/v1/agent/self", s.agentSelf, http.MethodGet)
	s.Handle("/v1/agent/members", s.agentMembers, http.MethodGet)
	s.Handle("/v1/agent/version", s.agentVersion, http.MethodGet)
	s.Handle("/v1/agent/maintenance", s.agentNodeMaintenance, http.MethodPut)
	s.Handle("/v1/agent/service/maintenance/", s.agentServiceMaintenance, http.MethodPut)
}

// selfNode is this member's node as its agent registers it.
func (s *Server) selfNode() *catalog.Node {
	a := s.cfg.NodeAddress
	return &catalog.Node{ID: s.cfg.NodeID, Node: s.cfg.NodeName, Address: a, Datacenter: s.cfg.Datacenter,
		TaggedAddresses: map[string]string{"lan": a, "lan_ipv4": a, "wan": a, "wan_ipv4": a},
		Meta:            map[string]string{"consul-network-segment": ""}}
}

// serfCheck is the node-level check Consul's agents keep for their node;
// a synod member reports it passing while it runs.
func (s *Server) serfCheck() *catalog.Check {
	return &catalog.Check{Node: s.cfg.NodeName, CheckID: catalog.SerfCheckID, Name: "Serf Health Status",
		Status: catalog.StatusPassing, Output: "Agent alive and reachable", ServiceTags: []string{}}
}

// ensureSelf makes sure the member's node and its serfHealth check are in
// the state, as an agent's anti-entropy does.
func (s *Server) ensureSelf(st *catalog.NodeState) {
	st.Node = s.selfNode()
	if _, ok := st.Checks[catalog.SerfCheckID]; !ok {
		st.Checks[catalog.SerfCheckID] = s.serfCheck()
	}
}

// RegisterSelf registers the member's node with its serfHealth check; a
// member calls it once it serves (server/consul.go). It writes nothing when
// the node is already registered as it is.
func (s *Server) RegisterSelf(ctx context.Context) error {
	return s.updateNode(ctx, s.cfg.NodeName, func(st *catalog.NodeState) error {
		s.ensureSelf(st)
		return nil
	})
}

// updateSelf changes the member's own node, registering it if needed.
func (s *Server) updateSelf(ctx context.Context, mutate func(*catalog.NodeState) error) error {
	return s.updateNode(ctx, s.cfg.NodeName, func(st *catalog.NodeState) error {
		s.ensureSelf(st)
		return mutate(st)
	})
}

func (s *Server) agentServiceRegister(w http.ResponseWriter, r *http.Request) (any, error) {
	var reg catalog.ServiceRegistration
	if err := s.decodeBody(r, &reg); err != nil {
		return nil, err
	}
	if _, _, _, err := reg.Build(s.cfg.NodeName); err != nil {
		return nil, err // refused before any read
	}
	_, replace := r.URL.Query()["replace-existing-checks"]
	return nil, s.updateSelf(r.Context(), func(st *catalog.NodeState) error {
		// built afresh on each attempt: SetService fills in what it stores
		svc, checks, explicit, err := reg.Build(s.cfg.NodeName)
		if err != nil {
			return err
		}
		if !replace { // Consul keeps the instance's other checks unless asked
			checks = keepOtherChecks(st, svc.ID, checks)
		}
		return st.SetService(svc, checks, explicit, s.cfg.Limits.Catalog)
	})
}

// keepOtherChecks adds to checks the instance's registered checks that the
// new registration does not name.
func keepOtherChecks(st *catalog.NodeState, serviceID string, checks []*catalog.Check) []*catalog.Check {
	named := map[string]bool{}
	for _, c := range checks {
		named[c.CheckID] = true
	}
	for _, c := range st.ServiceChecks(serviceID) {
		if !named[c.CheckID] {
			checks = append(checks, c)
		}
	}
	return checks
}

func (s *Server) agentServiceDeregister(w http.ResponseWriter, r *http.Request) (any, error) {
	id := pathArg(r, "/v1/agent/service/deregister/")
	return nil, s.updateSelf(r.Context(), func(st *catalog.NodeState) error {
		if st.RemoveService(id) {
			return NotFound("Unknown service ID %q. Ensure that the service ID is passed, not the service name.", id)
		}
		return nil
	})
}

// selfState reads this member's node at the request's consistency.
func (s *Server) selfState(r *http.Request) (*catalog.NodeState, error) {
	q, err := parseQuery(r)
	if err != nil {
		return nil, err
	}
	st, _, err := s.readNode(r.Context(), q.mode, s.cfg.NodeName)
	return st, err
}

func (s *Server) agentServices(w http.ResponseWriter, r *http.Request) (any, error) {
	st, err := s.selfState(r)
	if err != nil {
		return nil, err
	}
	out := map[string]*catalog.Service{}
	for id, svc := range st.Services {
		svc.Datacenter = s.cfg.Datacenter
		svc.CreateIndex, svc.ModifyIndex = 0, 0
		out[id] = svc
	}
	return filterMap(r, out)
}

func (s *Server) agentService(w http.ResponseWriter, r *http.Request) (any, error) {
	id := pathArg(r, "/v1/agent/service/")
	st, err := s.selfState(r)
	if err != nil {
		return nil, err
	}
	svc, ok := st.Services[id]
	if !ok {
		return nil, NotFound("unknown service ID: %s", id)
	}
	svc.Datacenter = s.cfg.Datacenter
	svc.CreateIndex, svc.ModifyIndex = 0, 0
	return svc, nil
}

func (s *Server) agentChecks(w http.ResponseWriter, r *http.Request) (any, error) {
	st, err := s.selfState(r)
	if err != nil {
		return nil, err
	}
	out := map[string]*catalog.Check{}
	for id, c := range st.Checks {
		c.CreateIndex, c.ModifyIndex = 0, 0
		out[id] = c
	}
	return filterMap(r, out)
}

func (s *Server) agentCheckRegister(w http.ResponseWriter, r *http.Request) (any, error) {
	var reg catalog.CheckRegistration
	if err := s.decodeBody(r, &reg); err != nil {
		return nil, err
	}
	if _, err := reg.BuildCheck(s.cfg.NodeName); err != nil {
		return nil, err // refused before any read
	}
	return nil, s.updateSelf(r.Context(), func(st *catalog.NodeState) error {
		c, err := reg.BuildCheck(s.cfg.NodeName) // afresh on each attempt, as above
		if err != nil {
			return err
		}
		return st.SetCheck(c, reg.Status != "", s.cfg.Limits.Catalog)
	})
}

func (s *Server) agentCheckDeregister(w http.ResponseWriter, r *http.Request) (any, error) {
	id := pathArg(r, "/v1/agent/check/deregister/")
	return nil, s.updateSelf(r.Context(), func(st *catalog.NodeState) error {
		if st.RemoveCheck(id) {
			return NotFound("Unknown check ID %q. Ensure that the check ID is passed, not the check name.", id)
		}
		return nil
	})
}

// agentCheckTTL serves pass, warn and fail: the TTL check's status and the
// ?note as its output; nothing is written when neither changes.
func (s *Server) agentCheckTTL(prefix, status string) endpoint {
	return func(w http.ResponseWriter, r *http.Request) (any, error) {
		return nil, s.setTTL(r.Context(), pathArg(r, prefix), status, r.URL.Query().Get("note"))
	}
}

func (s *Server) setTTL(ctx context.Context, id, status, output string) error {
	return s.updateCheck(ctx, s.cfg.NodeName, id, func(st *catalog.NodeState) error {
		return st.UpdateTTL(id, status, output, s.cfg.Limits.Catalog)
	})
}

// checkUpdate is the body of /v1/agent/check/update/:id.
type checkUpdate struct {
	Status string
	Output string
}

func (s *Server) agentCheckUpdate(w http.ResponseWriter, r *http.Request) (any, error) {
	var u checkUpdate
	if err := s.decodeBody(r, &u); err != nil {
		return nil, err
	}
	if !catalog.ValidStatus(u.Status) {
		return nil, BadRequest("Invalid check status: '%s'", u.Status)
	}
	return nil, s.setTTL(r.Context(), pathArg(r, "/v1/agent/check/update/"), u.Status, u.Output)
}
