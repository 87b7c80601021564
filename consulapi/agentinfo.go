package consulapi

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strconv"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
)

// Version is the Consul version the agent endpoints report: the release
// whose HTTP API shapes this package follows.
const Version = "1.21.0"

// member is one member as /v1/agent/members lists it (Consul's
// api.AgentMember).
type member struct {
	Name        string
	Addr        string
	Port        uint16
	Tags        map[string]string
	Status      int
	ProtocolMin uint8
	ProtocolMax uint8
	ProtocolCur uint8
	DelegateMin uint8
	DelegateMax uint8
	DelegateCur uint8
}

// memberAlive is serf's status of a live member.
const memberAlive = 1

func (s *Server) agentSelf(w http.ResponseWriter, r *http.Request) (any, error) {
	me := s.memberOf(&etcdserverpb.Member{Name: s.cfg.NodeName})
	if ms, err := s.members(r.Context()); err == nil {
		for _, m := range ms {
			if m.Name == s.cfg.NodeName {
				me = m
			}
		}
	}
	return map[string]any{
		"Config": map[string]any{"Datacenter": s.cfg.Datacenter, "PrimaryDatacenter": s.cfg.Datacenter,
			"NodeName": s.cfg.NodeName, "NodeID": s.cfg.NodeID, "Server": true, "Revision": "", "Version": Version,
			"BuildDate": "", "Partition": ""},
		"Member": me,
		"Meta":   map[string]string{"consul-network-segment": ""},
		"Coord":  nil,
		"Stats":  map[string]any{},
	}, nil
}

// agentVersion is /v1/agent/version: the Consul version whose API is
// served (synod's own build is not a Consul build).
func (s *Server) agentVersion(w http.ResponseWriter, r *http.Request) (any, error) {
	return map[string]any{"SHA": "", "BuildDate": "", "HumanVersion": Version, "FIPS": ""}, nil
}

func (s *Server) agentMembers(w http.ResponseWriter, r *http.Request) (any, error) {
	return s.members(r.Context())
}

// members lists the synod members that have published their names, as
// Consul's LAN members, all alive (synod has no gossip view of failures).
func (s *Server) members(ctx context.Context) ([]*member, error) {
	resp, err := s.cfg.Cluster.MemberList(ctx)
	if err != nil {
		return nil, err
	}
	out := []*member{}
	for _, m := range resp.Members {
		if m.Name != "" {
			out = append(out, s.memberOf(m))
		}
	}
	return out, nil
}

func (s *Server) memberOf(m *etcdserverpb.Member) *member {
	addr := s.cfg.NodeAddress
	if len(m.ClientURLs) > 0 {
		addr, _ = hostPort(m.ClientURLs[0])
	}
	var port uint16
	if len(m.PeerURLs) > 0 {
		_, p := hostPort(m.PeerURLs[0])
		n, _ := strconv.ParseUint(p, 10, 16)
		port = uint16(n)
	}
	return &member{Name: m.Name, Addr: addr, Port: port, Status: memberAlive,
		Tags: map[string]string{"role": "consul", "dc": s.cfg.Datacenter, "build": Version,
			"port": strconv.Itoa(int(port)), "vsn": "2", "vsn_min": "2", "vsn_max": "3", "raft_vsn": "3",
			"segment": "", "expect": "", "id": ""},
		ProtocolMin: 1, ProtocolMax: 5, ProtocolCur: 2, DelegateMin: 2, DelegateMax: 5, DelegateCur: 4}
}

// hostPort splits a URL's host and port ("" when it has none).
func hostPort(raw string) (string, string) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", ""
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return u.Host, ""
	}
	return host, port
}
