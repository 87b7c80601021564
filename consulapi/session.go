package consulapi

import (
	"context"
	"encoding/json"
	"net/http"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/synod-db/synod/catalog"
	"github.com/synod-db/synod/consulkv"
)

func (s *Server) registerSession() {
	s.Handle("/v1/session/create", s.sessionCreate, http.MethodPut)
	s.Handle("/v1/session/destroy/", s.sessionDestroy, http.MethodPut)
	s.Handle("/v1/session/renew/", s.sessionRenew, http.MethodPut)
	s.Handle("/v1/session/info/", s.sessionInfo, http.MethodGet)
	s.Handle("/v1/session/list", s.sessionList, http.MethodGet)
	s.Handle("/v1/session/node/", s.sessionNode, http.MethodGet)
}

// sessionCreate is PUT /v1/session/create: the body (optional) is Consul's
// SessionEntry; the answer {"ID": ...}.
func (s *Server) sessionCreate(w http.ResponseWriter, r *http.Request) (any, error) {
	var body json.RawMessage
	if r.ContentLength != 0 {
		if err := s.decodeBody(r, &body); err != nil {
			return nil, err
		}
	}
	sess, err := consulkv.ParseSession(body, s.cfg.NodeName, catalog.SerfCheckID)
	if err != nil {
		return nil, BadRequest("Request decode failed: %v", err)
	}
	if err := sess.Validate(); err != nil {
		return nil, err
	}
	id, err := s.createSession(r.Context(), sess)
	if err != nil {
		return nil, err
	}
	return struct{ ID string }{id}, nil
}

func (s *Server) sessionDestroy(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := requiredArg(r, "/v1/session/destroy/", "Missing session")
	if err != nil {
		return nil, err
	}
	if err := s.destroySession(r.Context(), id); err != nil {
		return nil, err
	}
	return true, nil
}

// sessionRenew resets a session's TTL; a session that is gone is Consul's
// 404.
func (s *Server) sessionRenew(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := requiredArg(r, "/v1/session/renew/", "Missing session")
	if err != nil {
		return nil, err
	}
	sess, err := s.renewSession(r.Context(), id)
	if err != nil {
		return nil, err
	}
	if sess == nil {
		return nil, NotFound("Session id '%s' not found", id)
	}
	return []*consulkv.Session{sess}, nil
}

func (s *Server) sessionInfo(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := requiredArg(r, "/v1/session/info/", "Missing session")
	if err != nil {
		return nil, err
	}
	return s.sessionQuery(w, r, func(sess *consulkv.Session) bool { return sess.ID == id })
}

func (s *Server) sessionList(w http.ResponseWriter, r *http.Request) (any, error) {
	return s.sessionQuery(w, r, func(*consulkv.Session) bool { return true })
}

func (s *Server) sessionNode(w http.ResponseWriter, r *http.Request) (any, error) {
	node, err := requiredArg(r, "/v1/session/node/", "Missing node name")
	if err != nil {
		return nil, err
	}
	return s.sessionQuery(w, r, func(sess *consulkv.Session) bool { return sess.Node == node })
}

// sessionQuery answers a session read (blocking): the live sessions that
// keep selects, with the session index as X-Consul-Index, as Consul's
// session table index.
func (s *Server) sessionQuery(w http.ResponseWriter, r *http.Request, keep func(*consulkv.Session) bool) (any, error) {
	specs := []watchSpec{{key: consulkv.SessionIndexKey}}
	return s.blockingQuery(w, r, specs, func(ctx context.Context, mode string) (uint64, any, error) {
		rs, _, err := s.readAll(ctx, mode, []getSpec{{key: consulkv.SessionIndexKey}, {key: consulkv.SessionPrefix, prefix: true}})
		if err != nil {
			return 0, nil, err
		}
		out := []*consulkv.Session{}
		for _, kv := range rs[1].Kvs {
			sess, err := decodeSession(kv)
			if err != nil {
				return 0, nil, err
			}
			if keep(sess) {
				out = append(out, sess)
			}
		}
		return kvIndex(false, rs[0]), out, nil
	})
}

// liveSessions reads every live session.
func (s *Server) liveSessions(ctx context.Context) ([]*consulkv.Session, error) {
	resp, err := s.cfg.KV.Get(ctx, consulkv.SessionPrefix, clientv3.WithPrefix(), clientv3.WithLimit(maxListKeys))
	if err != nil {
		return nil, err
	}
	var out []*consulkv.Session
	for _, kv := range resp.Kvs {
		sess, err := decodeSession(kv)
		if err != nil {
			return nil, err
		}
		out = append(out, sess)
	}
	return out, nil
}
