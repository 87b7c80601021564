package consulapi

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/synod-db/synod/catalog"
)

// Raft is what the API needs to know of the member's raft state: its own
// ID and the leader it knows (0 for none).
type Raft interface {
	ID() uint64
	Leader() uint64
}

// Config is what a Server is built from: the member's identity as a Consul
// agent, its clients of the store, and the bounds.
type Config struct {
	Datacenter  string // --consul-datacenter
	NodeName    string // the member's --name
	NodeID      string // a UUID derived from the member ID
	NodeAddress string // the host of the member's advertised client URL
	KV          clientv3.KV
	Watcher     clientv3.Watcher
	Lease       clientv3.Lease // sessions with a TTL; nil serves none
	Cluster     clientv3.Cluster
	Raft        Raft
	Logger      *slog.Logger
	Limits      Limits
}

// Limits bound the API's work (docs/discovery.md).
type Limits struct {
	MaxBodyBytes      int64         // request bodies; default 512 KiB
	BlockingPerClient int           // concurrent blocking queries per client IP; default 64
	BlockingTotal     int           // concurrent blocking queries in all; default 2048 (see DefaultLimits)
	DefaultWait       time.Duration // default 5 min
	MaxWait           time.Duration // cap 10 min
	Catalog           catalog.Limits
}

// DefaultLimits are the bounds unless configured otherwise. A blocking
// query holds up to two watches on the member's client of itself, whose
// watch stream holds at most 10,000 (--max-watchers-per-stream) shared with
// the KV, DNS and health-check users: 2,048 queries leave room for them.
var DefaultLimits = Limits{MaxBodyBytes: 512 << 10, BlockingPerClient: 64, BlockingTotal: 2048,
	DefaultWait: 5 * time.Minute, MaxWait: 10 * time.Minute, Catalog: catalog.DefaultLimits}

// Server is the Consul HTTP API of one member. It is an http.Handler.
type Server struct {
	cfg      Config
	log      *slog.Logger
	routes   map[string]route
	prefixes []string // keys of routes that end in "/", longest first
	blocking *limiter
}

// endpoint handles one request: a value to send as JSON (nil for an empty
// 200), or an error mapped by toHTTP.
type endpoint func(w http.ResponseWriter, r *http.Request) (any, error)

type route struct {
	methods []string
	h       endpoint
}

// New returns the API over cfg's clients; zero limits take the defaults.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Limits = cfg.Limits.withDefaults()
	s := &Server{cfg: cfg, log: cfg.Logger, routes: map[string]route{},
		blocking: newLimiter(cfg.Limits.BlockingPerClient, cfg.Limits.BlockingTotal)}
	s.registerAgent()
	s.registerCatalog()
	s.registerHealth()
	s.registerStatus()
	s.registerKV()
	s.registerSession()
	s.registerTxn()
	return s
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.MaxBodyBytes > 0 {
		d.MaxBodyBytes = l.MaxBodyBytes
	}
	if l.BlockingPerClient > 0 {
		d.BlockingPerClient = l.BlockingPerClient
	}
	if l.BlockingTotal > 0 {
		d.BlockingTotal = l.BlockingTotal
	}
	if l.DefaultWait > 0 {
		d.DefaultWait = l.DefaultWait
	}
	if l.MaxWait > 0 {
		d.MaxWait = l.MaxWait
	}
	if l.Catalog != (catalog.Limits{}) {
		d.Catalog = l.Catalog
	}
	return d
}

// Handle registers an endpoint: pattern is an exact path, or a path ending
// in "/" that takes everything below it (the rest is the endpoint's
// argument, see pathArg); methods are those it answers. Other engineers'
// endpoint groups (KV, sessions, txn) register themselves here.
func (s *Server) Handle(pattern string, h endpoint, methods ...string) {
	s.routes[pattern] = route{methods: methods, h: h}
	if strings.HasSuffix(pattern, "/") {
		s.prefixes = append(s.prefixes, pattern)
		sort.Slice(s.prefixes, func(i, j int) bool { return len(s.prefixes[i]) > len(s.prefixes[j]) })
	}
}

// ServeHTTP routes a request as Consul's mux does: an unknown path is a
// 404 with no body, a method the endpoint does not take a 405, OPTIONS a
// 200 naming the allowed methods.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	pattern, ok := s.match(r.URL.Path)
	if !ok {
		if r.URL.Path == "/" {
			w.Write([]byte("Consul Agent"))
			return
		}
		w.WriteHeader(http.StatusNotFound)
		return
	}
	rt := s.routes[pattern]
	allow := append([]string{http.MethodOptions}, rt.methods...)
	if r.Method == http.MethodOptions {
		w.Header().Set("Allow", strings.Join(allow, ","))
		return
	}
	if !slices.Contains(rt.methods, r.Method) {
		writeError(w, &HTTPError{Code: http.StatusMethodNotAllowed, Reason: "method " + r.Method + " not allowed", Allow: allow})
		return
	}
	if dc := r.URL.Query().Get("dc"); dc != "" && dc != s.cfg.Datacenter {
		writeError(w, &HTTPError{Code: http.StatusInternalServerError, Reason: "No path to datacenter"})
		return
	}
	obj, err := rt.h(w, r)
	if err != nil {
		s.log.Debug("consul request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, err)
		return
	}
	if obj != nil {
		writeJSON(w, r, obj)
	}
}

func (s *Server) match(path string) (string, bool) {
	if _, ok := s.routes[path]; ok {
		return path, true
	}
	for _, p := range s.prefixes {
		if strings.HasPrefix(path, p) {
			return p, true
		}
	}
	return "", false
}

// writeJSON sends obj as Consul does: compact, or indented with a final
// newline under ?pretty.
func writeJSON(w http.ResponseWriter, r *http.Request, obj any) {
	var b []byte
	var err error
	if _, ok := r.URL.Query()["pretty"]; ok {
		b, err = json.MarshalIndent(obj, "", "    ")
		b = append(b, '\n')
	} else {
		b, err = json.Marshal(obj)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// pathArg is the part of the request path after an endpoint's prefix
// pattern (a service name, a check ID, ...).
func pathArg(r *http.Request, prefix string) string {
	return strings.TrimPrefix(r.URL.Path, prefix)
}

// requiredArg is pathArg for an endpoint whose argument may not be empty:
// an empty one is Consul's 400 with missing as its text.
func requiredArg(r *http.Request, prefix, missing string) (string, error) {
	a := pathArg(r, prefix)
	if a == "" {
		return "", BadRequest("%s", missing)
	}
	return a, nil
}
