package catalog

import (
	"encoding/json"
	"fmt"
	"sort"
)

// NodeState is everything the catalog holds for one node: the unit that
// writes read, change and commit together (compared on the node's index
// key, so writers of one node never lose each other's updates).
type NodeState struct {
	Name     string
	Node     *Node // nil when the node is not registered
	Services map[string]*Service
	Checks   map[string]*Check
}

// NewNodeState returns the empty state of a node.
func NewNodeState(name string) *NodeState {
	return &NodeState{Name: name, Services: map[string]*Service{}, Checks: map[string]*Check{}}
}

// Clone returns a deep copy, so a mutation never changes what was read.
func (s *NodeState) Clone() *NodeState {
	c := NewNodeState(s.Name)
	if s.Node != nil {
		c.Node = cloneJSON(s.Node)
	}
	for id, v := range s.Services {
		c.Services[id] = cloneJSON(v)
	}
	for id, v := range s.Checks {
		c.Checks[id] = cloneJSON(v)
	}
	return c
}

func cloneJSON[T any](v *T) *T {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("catalog: clone: %v", err)) // our own plain structs always marshal
	}
	out := new(T)
	if err := json.Unmarshal(b, out); err != nil {
		panic(fmt.Sprintf("catalog: clone: %v", err))
	}
	return out
}

// ServiceChecks returns the checks of a service instance, sorted by ID.
func (s *NodeState) ServiceChecks(serviceID string) []*Check {
	var out []*Check
	for _, c := range s.Checks {
		if c.ServiceID == serviceID {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CheckID < out[j].CheckID })
	return out
}

// ChecksByService groups the node's checks by the ID of their service
// ("" for node-level checks), each group sorted by check ID: one pass for
// a listing of many instances.
func (s *NodeState) ChecksByService() map[string][]*Check {
	out := map[string][]*Check{}
	for _, c := range s.SortedChecks() {
		out[c.ServiceID] = append(out[c.ServiceID], c)
	}
	return out
}

// NodeChecks returns the node-level checks (no service), sorted by ID.
func (s *NodeState) NodeChecks() []*Check { return s.ServiceChecks("") }

// SortedServices returns the node's instances sorted by ID.
func (s *NodeState) SortedServices() []*Service {
	return sortedByID(s.Services, func(v *Service) string { return v.ID })
}

// SortedChecks returns all the node's checks sorted by ID.
func (s *NodeState) SortedChecks() []*Check {
	return sortedByID(s.Checks, func(v *Check) string { return v.CheckID })
}

func sortedByID[V any](m map[string]*V, id func(*V) string) []*V {
	out := make([]*V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return id(out[i]) < id(out[j]) })
	return out
}
