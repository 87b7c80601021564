package catalog

import (
	"fmt"
	"time"
)

// CheckRegistration is a check as agents receive it (Consul's
// AgentServiceCheck and AgentCheckRegistration in one).
type CheckRegistration struct {
	ID, CheckID, Name, Notes, ServiceID, Status  string
	Interval, Timeout, TTL                       Duration
	DeregisterCriticalServiceAfter               Duration
	SuccessBeforePassing, FailuresBeforeCritical int
	HTTP, Method, Body, TCP, UDP, GRPC, H2PING   string
	Header                                       map[string][]string
	TLSServerName                                string
	TLSSkipVerify, TCPUseTLS, GRPCUseTLS         bool
	ScriptArgs                                   []string
	AliasNode, AliasService, OSService           string
}

// ServiceRegistration is the body of /v1/agent/service/register (Consul's
// AgentServiceRegistration).
type ServiceRegistration struct {
	Kind, ID, Name, Address string
	Tags                    []string
	Port                    int
	TaggedAddresses         map[string]ServiceAddress
	EnableTagOverride       bool
	Meta                    map[string]string
	Weights                 *Weights
	Check                   *CheckRegistration
	Checks                  []*CheckRegistration
}

// Build validates the registration and returns the instance and its checks
// for node, with the set of check IDs whose status was given explicitly.
func (r *ServiceRegistration) Build(node string) (*Service, []*Check, map[string]bool, error) {
	if r.Name == "" {
		return nil, nil, nil, invalid("Missing service name")
	}
	svc := &Service{Kind: r.Kind, ID: r.ID, Service: r.Name, Tags: r.Tags, Meta: r.Meta, Port: r.Port,
		Address: r.Address, TaggedAddresses: r.TaggedAddresses, EnableTagOverride: r.EnableTagOverride,
		Weights: Weights{Passing: 1, Warning: 1}}
	if svc.ID == "" {
		svc.ID = svc.Service
	}
	if svc.Tags == nil {
		svc.Tags = []string{}
	}
	if svc.Meta == nil {
		svc.Meta = map[string]string{}
	}
	if r.Weights != nil {
		if r.Weights.Passing < 1 {
			return nil, nil, nil, invalid("Invalid Weights: Passing must be greater than 0")
		}
		svc.Weights = *r.Weights
	}
	regs := r.Checks
	if r.Check != nil {
		regs = append([]*CheckRegistration{r.Check}, regs...)
	}
	var checks []*Check
	explicit := map[string]bool{}
	for i, cr := range regs {
		if cr == nil {
			continue
		}
		c, err := cr.build(node)
		if err != nil {
			return nil, nil, nil, err
		}
		c.ServiceID, c.ServiceName, c.ServiceTags = svc.ID, svc.Service, svc.Tags
		if c.CheckID == "" {
			c.CheckID = "service:" + svc.ID
			if len(regs) > 1 {
				c.CheckID = fmt.Sprintf("service:%s:%d", svc.ID, i+1)
			}
		}
		if cr.Name == "" {
			c.Name = fmt.Sprintf("Service '%s' check", svc.Service)
		}
		explicit[c.CheckID] = cr.Status != ""
		checks = append(checks, c)
	}
	return svc, checks, explicit, nil
}

// BuildCheck validates an /v1/agent/check/register body.
func (r *CheckRegistration) BuildCheck(node string) (*Check, error) {
	if r.Name == "" {
		return nil, invalid("Missing check name")
	}
	c, err := r.build(node)
	if err != nil {
		return nil, err
	}
	c.ServiceID = r.ServiceID
	if c.CheckID == "" {
		c.CheckID = r.Name
	}
	return c, nil
}

func (r *CheckRegistration) build(node string) (*Check, error) {
	if r.Status != "" && !ValidStatus(r.Status) {
		return nil, invalid("Status for checks must 'passing', 'warning', 'critical'")
	}
	typ := r.kind()
	if typ == "" {
		return nil, invalid("Invalid check: TTL must be > 0 for TTL checks, or an interval and one of HTTP, TCP, UDP, GRPC, H2PING, ScriptArgs must be given")
	}
	if typ != "ttl" && typ != "alias" && time.Duration(r.Interval) <= 0 {
		return nil, invalid("Invalid check: Interval must be > 0 for %s checks", typ)
	}
	id := r.CheckID
	if id == "" {
		id = r.ID
	}
	return &Check{Node: node, CheckID: id, Name: r.Name, Notes: r.Notes, Status: r.Status, Type: typ,
		ServiceTags: []string{},
		Definition: CheckDefinition{HTTP: r.HTTP, Header: r.Header, Method: r.Method, Body: r.Body,
			TLSServerName: r.TLSServerName, TLSSkipVerify: r.TLSSkipVerify, TCP: r.TCP, TCPUseTLS: r.TCPUseTLS,
			UDP: r.UDP, GRPC: r.GRPC, GRPCUseTLS: r.GRPCUseTLS, OSService: r.OSService,
			Interval: r.Interval, Timeout: r.Timeout, TTL: r.TTL,
			DeregisterCriticalServiceAfter: r.DeregisterCriticalServiceAfter,
			SuccessBeforePassing:           r.SuccessBeforePassing, FailuresBeforeCritical: r.FailuresBeforeCritical}}, nil
}

// kind is the check's type as Consul names it, "" when no kind applies.
func (r *CheckRegistration) kind() string {
	switch {
	case r.TTL > 0:
		return "ttl"
	case r.HTTP != "":
		return "http"
	case r.TCP != "":
		return "tcp"
	case r.UDP != "":
		return "udp"
	case r.GRPC != "":
		return "grpc"
	case r.H2PING != "":
		return "h2ping"
	case len(r.ScriptArgs) > 0:
		return "script"
	case r.AliasNode != "" || r.AliasService != "":
		return "alias"
	case r.OSService != "":
		return "os_service"
	}
	return ""
}
