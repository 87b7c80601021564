package consulapi

import (
	"net/http"
	"net/url"
)

func (s *Server) registerStatus() {
	s.Handle("/v1/status/leader", s.statusLeader, http.MethodGet)
	s.Handle("/v1/status/peers", s.statusPeers, http.MethodGet)
}

// statusLeader answers the raft leader's address as Consul does: its
// "host:port" as a JSON string, "" when there is none. synod's is the
// leader's first peer URL.
func (s *Server) statusLeader(w http.ResponseWriter, r *http.Request) (any, error) {
	lead := s.cfg.Raft.Leader()
	if lead == 0 {
		return "", nil
	}
	resp, err := s.cfg.Cluster.MemberList(r.Context())
	if err != nil {
		return nil, err
	}
	for _, m := range resp.Members {
		if m.ID == lead && len(m.PeerURLs) > 0 {
			return peerAddr(m.PeerURLs[0]), nil
		}
	}
	return "", nil
}

// statusPeers lists the voting members' peer addresses.
func (s *Server) statusPeers(w http.ResponseWriter, r *http.Request) (any, error) {
	resp, err := s.cfg.Cluster.MemberList(r.Context())
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, m := range resp.Members {
		if !m.IsLearner && len(m.PeerURLs) > 0 {
			out = append(out, peerAddr(m.PeerURLs[0]))
		}
	}
	return out, nil
}

func peerAddr(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Host
}
