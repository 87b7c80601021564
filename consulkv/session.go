package consulkv

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Session behaviors: what happens to the keys a session holds when it ends.
const (
	BehaviorRelease = "release"
	BehaviorDelete  = "delete"
)

// Bounds and defaults of sessions, Consul's.
const (
	TTLMin           = 10 * time.Second
	TTLMax           = 24 * time.Hour
	DefaultLockDelay = 15 * time.Second
	// lockDelayMinThreshold: a LockDelay below it is taken as seconds, as
	// Consul does for clients that send 15 meaning 15s.
	lockDelayMinThreshold = 1000
)

// ServiceCheck names a service-level check a session depends on.
type ServiceCheck struct {
	ID        string
	Namespace string `json:",omitempty"`
}

// Session is a Consul session, in the shape Consul's server sends it
// (api.SessionEntry reads it); its indexes are its key's revisions.
type Session struct {
	ID            string
	Name          string
	Node          string
	LockDelay     time.Duration
	Behavior      string
	TTL           string
	NodeChecks    []string
	ServiceChecks []ServiceCheck
	CreateIndex   uint64
	ModifyIndex   uint64
}

// ParseSession reads a /v1/session/create body (nil for none) as Consul's
// agent does, over its defaults: the agent's node, its serfHealth check
// unless the body names checks, a 15 s lock delay (a number below 1000, or
// a duration string below 1000 ns, is seconds), behavior release.
func ParseSession(body []byte, node, serfCheck string) (*Session, error) {
	s := &Session{Node: node, LockDelay: DefaultLockDelay, Behavior: BehaviorRelease, NodeChecks: []string{serfCheck}}
	if len(body) == 0 {
		return s, nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, err
	}
	var checks []string
	named := false
	for k, v := range raw {
		var err error
		switch strings.ToLower(k) {
		case "name":
			err = json.Unmarshal(v, &s.Name)
		case "node":
			err = json.Unmarshal(v, &s.Node)
		case "behavior":
			err = json.Unmarshal(v, &s.Behavior)
		case "ttl":
			err = json.Unmarshal(v, &s.TTL)
		case "lockdelay":
			s.LockDelay, err = parseLockDelay(v)
		case "checks", "nodechecks":
			var c []string
			err = json.Unmarshal(v, &c)
			checks, named = append(checks, c...), true
		case "servicechecks":
			err = json.Unmarshal(v, &s.ServiceChecks)
			named = true
		}
		if err != nil {
			return nil, err
		}
	}
	if named {
		s.NodeChecks = dedupe(checks)
	}
	return s, nil
}

func parseLockDelay(v json.RawMessage) (time.Duration, error) {
	var str string
	if json.Unmarshal(v, &str) == nil {
		d, err := time.ParseDuration(str)
		if err != nil {
			return 0, err
		}
		return scaleDelay(d), nil
	}
	var n float64
	if err := json.Unmarshal(v, &n); err != nil {
		return 0, fmt.Errorf("LockDelay: want a duration or a number, got %s", v)
	}
	return scaleDelay(time.Duration(n)), nil
}

func scaleDelay(d time.Duration) time.Duration {
	if d < lockDelayMinThreshold {
		return d * time.Second
	}
	return d
}

func dedupe(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// Validate checks a session to create with Consul's errors: its node, its
// behavior and its TTL (0 or between TTLMin and TTLMax).
func (s *Session) Validate() error {
	if s.Node == "" {
		return invalid("Must provide Node")
	}
	switch s.Behavior {
	case "":
		s.Behavior = BehaviorRelease
	case BehaviorRelease, BehaviorDelete:
	default:
		return invalid("Invalid Behavior setting '%s'", s.Behavior)
	}
	ttl, err := s.TTLDuration()
	if err != nil {
		return invalid("Session TTL '%s' invalid: %v", s.TTL, err)
	}
	if ttl != 0 && (ttl < TTLMin || ttl > TTLMax) {
		return invalid("Invalid Session TTL '%d', must be between [%v=%v]", ttl, TTLMin, TTLMax)
	}
	return nil
}

// TTLDuration is the session's TTL, 0 for none.
func (s *Session) TTLDuration() (time.Duration, error) {
	if s.TTL == "" {
		return 0, nil
	}
	return time.ParseDuration(s.TTL)
}

// CheckIDs are every check the session depends on: node-level first.
func (s *Session) CheckIDs() []string {
	ids := append([]string(nil), s.NodeChecks...)
	for _, c := range s.ServiceChecks {
		ids = append(ids, c.ID)
	}
	return ids
}

// Healthy checks the session against its node's checks (ID → status;
// nil when the node is not registered), with Consul's errors: the node
// must be registered and every check the session names must exist and not
// be critical. A live session for which this fails is invalidated.
func (s *Session) Healthy(checks map[string]string, critical string) error {
	if checks == nil {
		return invalid("Missing node registration")
	}
	for _, id := range s.CheckIDs() {
		st, ok := checks[id]
		if !ok {
			return invalid("Missing check '%s' registration", id)
		}
		if st == critical {
			return invalid("Check '%s' is in %s state", id, st)
		}
	}
	return nil
}
