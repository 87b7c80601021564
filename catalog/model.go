package catalog

// Health states of a check, as Consul spells them.
const (
	StatusPassing  = "passing"
	StatusWarning  = "warning"
	StatusCritical = "critical"
	StatusMaint    = "maintenance"
	// StatusAny is the pseudo-state of /v1/health/state/any.
	StatusAny = "any"
)

// SerfCheckID is the ID of the node-level check every agent keeps for its
// own node (Consul's "serfHealth").
const SerfCheckID = "serfHealth"

// Node is a catalog node (Consul's api.Node).
type Node struct {
	ID              string
	Node            string
	Address         string
	Datacenter      string
	TaggedAddresses map[string]string
	Meta            map[string]string
	CreateIndex     uint64
	ModifyIndex     uint64
}

// Weights are a service instance's DNS SRV weights (Consul's AgentWeights).
type Weights struct {
	Passing int
	Warning int
}

// ServiceAddress is one of a service's tagged addresses.
type ServiceAddress struct {
	Address string
	Port    int
}

// Service is one service instance on a node (Consul's api.AgentService).
type Service struct {
	Kind              string `json:",omitempty"`
	ID                string
	Service           string
	Tags              []string
	Meta              map[string]string
	Port              int
	Address           string
	TaggedAddresses   map[string]ServiceAddress `json:",omitempty"`
	Weights           Weights
	EnableTagOverride bool
	CreateIndex       uint64 `json:",omitempty"`
	ModifyIndex       uint64 `json:",omitempty"`
	Datacenter        string `json:",omitempty"`
}

// CheckDefinition is how a check is run (Consul's HealthCheckDefinition);
// durations are Go duration strings, as Consul prints them.
type CheckDefinition struct {
	HTTP                           string
	Header                         map[string][]string
	Method                         string
	Body                           string
	TLSServerName                  string
	TLSSkipVerify                  bool
	TCP                            string
	TCPUseTLS                      bool
	UDP                            string
	GRPC                           string
	OSService                      string
	GRPCUseTLS                     bool
	Interval                       Duration
	Timeout                        Duration
	TTL                            Duration `json:",omitempty"`
	DeregisterCriticalServiceAfter Duration
	SuccessBeforePassing           int `json:",omitempty"` // results in a row before passing (the runner's)
	FailuresBeforeCritical         int `json:",omitempty"` // results in a row before critical (the runner's)
}

// Check is one health check (Consul's api.HealthCheck).
type Check struct {
	Node        string
	CheckID     string
	Name        string
	Status      string
	Notes       string
	Output      string
	ServiceID   string
	ServiceName string
	ServiceTags []string
	Type        string
	ExposedPort int
	Definition  CheckDefinition
	CreateIndex uint64
	ModifyIndex uint64
}

// ServiceEntry is one instance with its node and checks, the element of
// /v1/health/service/:name (Consul's api.ServiceEntry).
type ServiceEntry struct {
	Node    *Node
	Service *Service
	Checks  []*Check
}

// CatalogService is one instance as /v1/catalog/service/:name lists it
// (Consul's api.CatalogService).
type CatalogService struct {
	ID                       string
	Node                     string
	Address                  string
	Datacenter               string
	TaggedAddresses          map[string]string
	NodeMeta                 map[string]string
	ServiceID                string
	ServiceName              string
	ServiceAddress           string
	ServiceTaggedAddresses   map[string]ServiceAddress `json:",omitempty"`
	ServiceTags              []string
	ServiceMeta              map[string]string
	ServicePort              int
	ServiceWeights           Weights
	ServiceEnableTagOverride bool
	CreateIndex              uint64
	ModifyIndex              uint64
}

// NewCatalogService flattens an instance and its node into Consul's
// CatalogService shape.
func NewCatalogService(n *Node, s *Service) *CatalogService {
	return &CatalogService{
		ID: n.ID, Node: n.Node, Address: n.Address, Datacenter: n.Datacenter,
		TaggedAddresses: n.TaggedAddresses, NodeMeta: n.Meta,
		ServiceID: s.ID, ServiceName: s.Service, ServiceAddress: s.Address,
		ServiceTaggedAddresses: s.TaggedAddresses, ServiceTags: s.Tags, ServiceMeta: s.Meta,
		ServicePort: s.Port, ServiceWeights: s.Weights, ServiceEnableTagOverride: s.EnableTagOverride,
		CreateIndex: s.CreateIndex, ModifyIndex: s.ModifyIndex,
	}
}
