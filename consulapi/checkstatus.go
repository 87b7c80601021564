package consulapi

import (
	"context"
	"net/http"

	"github.com/synod-db/synod/catalog"
)

// SetCheckStatus sets the status and output (cut to the output bound) of a
// check of node through the catalog's one write path (updateCheck): it
// writes nothing when neither changes, nor when the node has no such check
// (deregistered meanwhile). The health-check runner calls it.
func (s *Server) SetCheckStatus(ctx context.Context, node, checkID, status, output string) error {
	return s.updateCheck(ctx, node, checkID, func(st *catalog.NodeState) error {
		if c, ok := st.Checks[checkID]; ok {
			c.Status, c.Output = status, catalog.TruncateOutput(output, s.cfg.Limits.Catalog.CheckOutputBytes)
		}
		return nil
	})
}

// DeregisterService removes a service instance of node with its checks
// (the runner's reaper, Consul's DeregisterCriticalServiceAfter); a
// missing instance writes nothing.
func (s *Server) DeregisterService(ctx context.Context, node, serviceID string) error {
	return s.updateNode(ctx, node, func(st *catalog.NodeState) error {
		st.RemoveService(serviceID)
		return nil
	})
}

// ttlRoutes are the agent endpoints that tell a TTL check its status.
var ttlRoutes = []string{"/v1/agent/check/pass/", "/v1/agent/check/warn/", "/v1/agent/check/fail/", "/v1/agent/check/update/"}

// ObserveTTL calls touched with the check ID of every successful TTL
// update of this agent (pass, warn, fail, update), written or not: the
// runner re-arms the check's TTL, as a Consul agent's timer. Call it
// before the API serves.
func (s *Server) ObserveTTL(touched func(checkID string)) {
	for _, p := range ttlRoutes {
		rt, prefix := s.routes[p], p
		inner := rt.h
		rt.h = func(w http.ResponseWriter, r *http.Request) (any, error) {
			v, err := inner(w, r)
			if err == nil {
				touched(pathArg(r, prefix))
			}
			return v, err
		}
		s.routes[p] = rt
	}
}
