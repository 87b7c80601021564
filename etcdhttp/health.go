// Package etcdhttp serves the HTTP endpoints etcd serves beside its gRPC API,
// with etcd's paths, status codes and bodies, so that load balancers,
// Kubernetes probes and Prometheus scrape configs written for etcd work
// against synod:
//
//   - /health: {"health":"true","reason":""}, or 503 with the reason
//     ("RAFT NO LEADER", "ALARM NOSPACE", "RANGE ERROR:..."); ?serializable=true
//     checks only this member, ?exclude=NOSPACE ignores an alarm.
//   - /livez: the member is alive (its local state answers a read).
//   - /readyz: the member can serve clients (no corruption alarm, local and
//     linearizable reads work, not a learner). Both take ?verbose and
//     ?exclude=NAME, and each check has its own path (/readyz/linearizable_read).
//   - /metrics: Prometheus metrics (package metrics).
//   - /version: the etcd versions synod speaks.
//   - /debug/pprof/: Go's profiler, only when enabled.
//
// The handlers do no I/O of their own beyond calling the Member.
package etcdhttp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/pprof"
	"slices"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/version"

	"github.com/synod-db/synod/metrics"
)

// Member is what the endpoints ask of a member. Its methods must be safe
// for concurrent use.
type Member interface {
	// HasLeader reports whether the member knows a leader.
	HasLeader() bool
	// IsLearner reports whether the member is a raft learner.
	IsLearner() bool
	// Alarms lists the cluster's active alarms.
	Alarms() []*pb.AlarmMember
	// CheckRead performs a keys-only, limit-1 read through the member's
	// normal read path (after a ReadIndex unless serializable).
	CheckRead(ctx context.Context, serializable bool) error
}

// Options configure NewHandler.
type Options struct {
	// Metrics is served at /metrics and counts health checks; nil serves
	// no /metrics.
	Metrics *metrics.Set
	// EnablePprof serves /debug/pprof/ (etcd's --enable-pprof).
	EnablePprof bool
	// Timeout bounds one check's read (etcd: its request timeout).
	Timeout time.Duration
	// ServerVersion, ClusterVersion and StorageVersion are what /version
	// reports, in etcd's version.Versions shape.
	ServerVersion, ClusterVersion, StorageVersion string
}

// NewHandler returns the endpoints for m.
func NewHandler(m Member, o Options) http.Handler {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	mux := http.NewServeMux()
	h := &handler{m: m, o: o}
	mux.HandleFunc("/health", h.health)
	h.installChecks(mux, "livez", []check{{"serializable_read", h.readCheck(true)}})
	h.installChecks(mux, "readyz", []check{
		{"data_corruption", h.alarmCheck(pb.AlarmType_CORRUPT)},
		{"serializable_read", h.readCheck(true)},
		{"linearizable_read", h.readCheck(false)},
		{"non_learner", h.learnerCheck},
	})
	mux.HandleFunc("/version", h.version)
	if o.Metrics != nil {
		mux.Handle("/metrics", o.Metrics.Handler())
	}
	if o.EnablePprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

type handler struct {
	m Member
	o Options
}

// healthBody is etcd's /health answer.
type healthBody struct {
	Health string `json:"health"`
	Reason string `json:"reason"`
}

// health is etcd's /health: alarms, then the leader, then a read.
func (h *handler) health(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	serializable := r.URL.Query().Get("serializable") == "true"
	body := h.healthOf(r.Context(), querySet(r, "exclude"), serializable)
	h.count("health", "health", body.Health == "true")
	d, _ := json.Marshal(body)
	if body.Health != "true" {
		http.Error(w, string(d), http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(d)
}

func (h *handler) healthOf(ctx context.Context, excluded []string, serializable bool) healthBody {
	for _, a := range h.m.Alarms() {
		name := a.GetAlarm().String()
		if slices.Contains(excluded, name) {
			continue
		}
		switch a.GetAlarm() {
		case pb.AlarmType_NOSPACE, pb.AlarmType_CORRUPT:
			return healthBody{"false", "ALARM " + name}
		default:
			return healthBody{"false", "ALARM UNKNOWN"}
		}
	}
	if !serializable && !h.m.HasLeader() {
		return healthBody{"false", "RAFT NO LEADER"}
	}
	ctx, cancel := context.WithTimeout(ctx, h.o.Timeout)
	defer cancel()
	if err := h.m.CheckRead(ctx, serializable); err != nil {
		return healthBody{"false", fmt.Sprintf("RANGE ERROR:%s", err)}
	}
	return healthBody{"true", ""}
}

// check is one named /livez or /readyz check.
type check struct {
	name string
	run  func(context.Context) error
}

// installChecks serves /kind (every check but ?exclude=NAME ones) and
// /kind/NAME (that check alone).
func (h *handler) installChecks(mux *http.ServeMux, kind string, checks []check) {
	mux.HandleFunc("/"+kind, func(w http.ResponseWriter, r *http.Request) {
		excluded := querySet(r, "exclude")
		var run []check
		for _, c := range checks {
			if !slices.Contains(excluded, c.name) {
				run = append(run, c)
			}
		}
		h.runChecks(w, r, kind, run)
	})
	for _, c := range checks {
		mux.HandleFunc("/"+kind+"/"+c.name, func(w http.ResponseWriter, r *http.Request) {
			h.runChecks(w, r, kind, []check{c})
		})
	}
}

// runChecks answers as etcd does: 503 with every check's line on failure;
// "ok" (after the lines, with ?verbose) on success.
func (h *handler) runChecks(w http.ResponseWriter, r *http.Request, kind string, checks []check) {
	if !allowGet(w, r) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.o.Timeout)
	defer cancel()
	var out strings.Builder
	failed := false
	for _, c := range checks {
		err := c.run(ctx)
		h.count(kind, c.name, err == nil)
		if err != nil {
			failed = true
			fmt.Fprintf(&out, "[-]%s failed: %v\n", c.name, err)
		} else {
			fmt.Fprintf(&out, "[+]%s ok\n", c.name)
		}
	}
	if failed {
		http.Error(w, out.String(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if _, ok := r.URL.Query()["verbose"]; ok {
		fmt.Fprint(w, out.String())
	}
	fmt.Fprint(w, "ok\n")
}

func (h *handler) readCheck(serializable bool) func(context.Context) error {
	return func(ctx context.Context) error { return h.m.CheckRead(ctx, serializable) }
}

func (h *handler) alarmCheck(t pb.AlarmType) func(context.Context) error {
	return func(context.Context) error {
		for _, a := range h.m.Alarms() {
			if a.GetAlarm() == t {
				return fmt.Errorf("alarm activated: %s", t)
			}
		}
		return nil
	}
}

func (h *handler) learnerCheck(context.Context) error {
	if h.m.IsLearner() {
		return fmt.Errorf("not supported for learner")
	}
	return nil
}

// version is etcd's /version.
func (h *handler) version(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	d, _ := json.Marshal(version.Versions{Server: h.o.ServerVersion, Cluster: h.o.ClusterVersion, Storage: h.o.StorageVersion})
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(d)
}

// count records a check's outcome in etcd_server_healthchecks_total.
func (h *handler) count(kind, name string, ok bool) {
	if h.o.Metrics == nil {
		return
	}
	status := "success"
	if !ok {
		status = "error"
	}
	h.o.Metrics.HealthChecks.WithLabelValues(kind, name, status).Inc()
}

// allowGet answers 405 to anything but GET, as etcd does.
func allowGet(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet {
		return true
	}
	w.Header().Set("Allow", http.MethodGet)
	http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
	return false
}

// querySet returns every value of the repeated query parameter key.
func querySet(r *http.Request, key string) []string {
	return r.URL.Query()[key]
}
