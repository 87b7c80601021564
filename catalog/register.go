package catalog

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid marks a registration that Consul refuses with 400; its text is
// Consul's.
var ErrInvalid = errors.New("invalid registration")

// ErrNotFound marks a deregistration or update of something the node does
// not have (Consul's 404); its text is Consul's.
var ErrNotFound = errors.New("not found")

// ErrLimit marks a registration over one of the catalog's bounds.
var ErrLimit = errors.New("limit exceeded")

// Limits bound what one node may hold (docs/discovery.md).
type Limits struct {
	ServicesPerNode  int // default 5,000
	ChecksPerNode    int // default 5,000
	ChecksPerService int // default 64
	CheckOutputBytes int // longer outputs are cut, as Consul's 4 KiB default
}

// DefaultLimits are the catalog's bounds unless configured otherwise.
var DefaultLimits = Limits{ServicesPerNode: 5000, ChecksPerNode: 5000, ChecksPerService: 64, CheckOutputBytes: 4096}

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

// Reason is the message Consul sends for err: its text without the
// sentinel's prefix.
func Reason(err error) string {
	s := err.Error()
	for _, p := range []error{ErrInvalid, ErrNotFound, ErrLimit} {
		if errors.Is(err, p) {
			return strings.TrimPrefix(s, p.Error()+": ")
		}
	}
	return s
}

// SetService puts an instance and replaces its checks with checks: checks
// of the instance that are not in the new list are removed, and a check
// registered again without an explicit status keeps the status and output
// it had.
func (s *NodeState) SetService(svc *Service, checks []*Check, explicit map[string]bool, lim Limits) error {
	if svc.Tags == nil {
		svc.Tags = []string{} // Consul sends [] and {} rather than null
	}
	if svc.Meta == nil {
		svc.Meta = map[string]string{}
	}
	if _, ok := s.Services[svc.ID]; !ok && lim.ServicesPerNode > 0 && len(s.Services) >= lim.ServicesPerNode {
		return fmt.Errorf("%w: node %q already has %d services (the limit)", ErrLimit, s.Name, len(s.Services))
	}
	if lim.ChecksPerService > 0 && len(checks) > lim.ChecksPerService {
		return fmt.Errorf("%w: service %q has %d checks (the limit is %d)", ErrLimit, svc.ID, len(checks), lim.ChecksPerService)
	}
	s.Services[svc.ID] = svc
	keep := map[string]bool{}
	for _, c := range checks {
		keep[c.CheckID] = true
	}
	for id, c := range s.Checks {
		if c.ServiceID == svc.ID && !keep[id] {
			delete(s.Checks, id)
		}
	}
	for _, c := range checks {
		if err := s.SetCheck(c, explicit[c.CheckID], lim); err != nil {
			return err
		}
	}
	return nil
}

// SetCheck puts a check, bound to the instance its ServiceID names (which
// must exist). Without an explicit status an existing check keeps its
// status and output.
func (s *NodeState) SetCheck(c *Check, explicitStatus bool, lim Limits) error {
	c.Node = s.Name
	if c.ServiceID != "" {
		svc, ok := s.Services[c.ServiceID]
		if !ok {
			return invalid("ServiceID %q does not exist", c.ServiceID)
		}
		c.ServiceName, c.ServiceTags = svc.Service, svc.Tags
	}
	old, exists := s.Checks[c.CheckID]
	if !exists && lim.ChecksPerNode > 0 && len(s.Checks) >= lim.ChecksPerNode {
		return fmt.Errorf("%w: node %q already has %d checks (the limit)", ErrLimit, s.Name, len(s.Checks))
	}
	if exists && !explicitStatus {
		c.Status, c.Output = old.Status, old.Output
	}
	if c.Status == "" {
		c.Status = StatusCritical
	}
	if c.ServiceTags == nil {
		c.ServiceTags = []string{} // Consul sends [] rather than null
	}
	s.Checks[c.CheckID] = c
	return nil
}

// RemoveService removes an instance and its checks; missing reports
// whether it was absent.
func (s *NodeState) RemoveService(id string) (missing bool) {
	if _, ok := s.Services[id]; !ok {
		return true
	}
	delete(s.Services, id)
	for cid, c := range s.Checks {
		if c.ServiceID == id {
			delete(s.Checks, cid)
		}
	}
	return false
}

// RemoveCheck removes a check; missing reports whether it was absent.
func (s *NodeState) RemoveCheck(id string) (missing bool) {
	if _, ok := s.Checks[id]; !ok {
		return true
	}
	delete(s.Checks, id)
	return false
}

// RemoveNode removes the node with all its instances and checks.
func (s *NodeState) RemoveNode() {
	s.Node = nil
	s.Services = map[string]*Service{}
	s.Checks = map[string]*Check{}
}

// UpdateTTL sets a TTL check's status and output (cut to the output limit),
// Consul's /v1/agent/check/pass|warn|fail|update.
func (s *NodeState) UpdateTTL(id, status, output string, lim Limits) error {
	c, ok := s.Checks[id]
	if !ok || c.Type != "ttl" {
		return fmt.Errorf("%w: CheckID %q does not have associated TTL", ErrNotFound, id)
	}
	c.Status, c.Output = status, TruncateOutput(output, lim.CheckOutputBytes)
	return nil
}

// TruncateOutput cuts a check's output to max bytes, saying so as Consul
// does.
func TruncateOutput(out string, max int) string {
	if max <= 0 || len(out) <= max {
		return out
	}
	return fmt.Sprintf("%s ... (captured %d of %d bytes)", out[:max], max, len(out))
}

// ValidStatus reports whether st is a status a check may be set to.
func ValidStatus(st string) bool {
	return st == StatusPassing || st == StatusWarning || st == StatusCritical
}
