package catalog

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/go-bexpr"
)

// ErrFilter marks a ?filter expression go-bexpr cannot parse or apply.
var ErrFilter = fmt.Errorf("%w: filter", ErrInvalid)

// Filter keeps the elements of items (a slice or a map of Consul's shapes)
// that match a go-bexpr expression, as Consul's ?filter does; an empty
// expression keeps all.
func Filter[T any](expr string, items T) (T, error) {
	if expr == "" {
		return items, nil
	}
	f, err := bexpr.CreateFilter(expr)
	if err != nil {
		return items, fmt.Errorf("%w: Failed to create boolean expression evaluator: %v", ErrInvalid, err)
	}
	out, err := f.Execute(items)
	if err != nil {
		return items, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return out.(T), nil
}

// HasTags reports whether an instance carries every tag (compared without
// case, as Consul's ?tag does).
func HasTags(s *Service, tags []string) bool {
	for _, want := range tags {
		found := false
		for _, t := range s.Tags {
			if strings.EqualFold(t, want) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// HasNodeMeta reports whether a node carries every key with its value
// (Consul's ?node-meta=key:value, repeatable).
func HasNodeMeta(n *Node, want map[string]string) bool {
	for k, v := range want {
		if got, ok := n.Meta[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Aggregate is the health of a set of checks as Consul aggregates it:
// critical if any is critical (or in maintenance), else warning if any
// warns, else passing.
func Aggregate(checks []*Check) string {
	st := StatusPassing
	for _, c := range checks {
		switch c.Status {
		case StatusCritical, StatusMaint:
			return StatusCritical
		case StatusWarning:
			st = StatusWarning
		}
	}
	return st
}

// AllPassing reports whether every check passes (Consul's ?passing keeps
// only such instances; warning ones are left out too).
func AllPassing(checks []*Check) bool {
	for _, c := range checks {
		if c.Status != StatusPassing {
			return false
		}
	}
	return true
}

// SortEntries orders health entries by node then service ID, so answers
// are stable.
func SortEntries(es []*ServiceEntry) {
	sort.Slice(es, func(i, j int) bool {
		if es[i].Node.Node != es[j].Node.Node {
			return es[i].Node.Node < es[j].Node.Node
		}
		return es[i].Service.ID < es[j].Service.ID
	})
}
