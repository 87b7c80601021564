package consulapi

import (
	"net/http"
	"strconv"

	"github.com/synod-db/synod/catalog"
)

// Consul's maintenance checks: critical checks of their own, which take a
// node or an instance out of every health answer while they exist.
const (
	nodeMaintID        = "_node_maintenance"
	serviceMaintPrefix = "_service_maintenance:"
	maintType          = "maintenance"
	nodeMaintNotes     = "Maintenance mode is enabled for this node, but no reason was provided. This is a default message."
	serviceMaintNotes  = "Maintenance mode is enabled for this service, but no reason was provided. This is a default message."
)

// maintParams reads ?enable (required, a boolean) and ?reason as Consul.
func maintParams(r *http.Request) (enable bool, reason string, err error) {
	q := r.URL.Query()
	if _, ok := q["enable"]; !ok {
		return false, "", BadRequest("Missing value for enable")
	}
	raw := q.Get("enable")
	if enable, err = strconv.ParseBool(raw); err != nil {
		return false, "", BadRequest("Invalid value for enable: %q", raw)
	}
	return enable, q.Get("reason"), nil
}

// agentNodeMaintenance puts the member's node into maintenance (a critical
// _node_maintenance check, so none of its instances is passing) or takes it
// out; doing either twice changes nothing.
func (s *Server) agentNodeMaintenance(w http.ResponseWriter, r *http.Request) (any, error) {
	enable, reason, err := maintParams(r)
	if err != nil {
		return nil, err
	}
	return nil, s.updateSelf(r.Context(), func(st *catalog.NodeState) error {
		if !enable {
			st.RemoveCheck(nodeMaintID)
			return nil
		}
		if _, on := st.Checks[nodeMaintID]; on {
			return nil
		}
		return st.SetCheck(maintCheck(nodeMaintID, "Node Maintenance Mode", reason, nodeMaintNotes, ""), true, s.cfg.Limits.Catalog)
	})
}

// agentServiceMaintenance does the same for one instance of this agent
// (a critical _service_maintenance:<id> check).
func (s *Server) agentServiceMaintenance(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := requiredArg(r, "/v1/agent/service/maintenance/", "Missing service ID")
	if err != nil {
		return nil, err
	}
	enable, reason, err := maintParams(r)
	if err != nil {
		return nil, err
	}
	return nil, s.updateSelf(r.Context(), func(st *catalog.NodeState) error {
		if _, ok := st.Services[id]; !ok {
			return NotFound("No service registered with ID %q", id)
		}
		cid := serviceMaintPrefix + id
		if !enable {
			st.RemoveCheck(cid)
			return nil
		}
		if _, on := st.Checks[cid]; on {
			return nil
		}
		return st.SetCheck(maintCheck(cid, "Service Maintenance Mode", reason, serviceMaintNotes, id), true, s.cfg.Limits.Catalog)
	})
}

func maintCheck(id, name, reason, defaultNotes, serviceID string) *catalog.Check {
	if reason == "" {
		reason = defaultNotes
	}
	return &catalog.Check{CheckID: id, Name: name, Notes: reason, Status: catalog.StatusCritical,
		ServiceID: serviceID, Type: maintType}
}
