// Package metrics holds one member's Prometheus metrics under etcd's names,
// so that etcd's Grafana dashboards and alerting rules work against synod
// unchanged.
//
// Each member owns its own Set (several members share one process in
// tests), with its own registry. Values that a member already tracks
// (leader, indexes, sizes) are read at scrape time through functions the
// member registers with GaugeFunc and CounterFunc; events (an fsync, an
// apply commit, a handled RPC) are observed as they happen through the
// typed fields. Every method is safe for concurrent use.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Set is one member's metrics.
type Set struct {
	reg *prometheus.Registry

	// WALFsync is etcd_disk_wal_fsync_duration_seconds: every synced commit
	// of the raft log (synod's WAL is Pebble's).
	WALFsync prometheus.Histogram
	// BackendCommit is etcd_disk_backend_commit_duration_seconds: every
	// commit of an apply batch to the state store.
	BackendCommit prometheus.Histogram
	// GRPCStarted is grpc_server_started_total{grpc_type,grpc_service,grpc_method}.
	GRPCStarted *prometheus.CounterVec
	// GRPCHandled is grpc_server_handled_total{grpc_type,grpc_service,grpc_method,grpc_code}.
	GRPCHandled *prometheus.CounterVec
	// HealthChecks is etcd_server_healthchecks_total{type,name,status}.
	HealthChecks *prometheus.CounterVec
}

// New returns a Set with the event metrics and the Go runtime and process
// collectors registered.
func New() *Set {
	s := &Set{reg: prometheus.NewRegistry()}
	s.WALFsync = s.histogram("etcd", "disk", "wal_fsync_duration_seconds",
		"The latency distributions of fsync called by WAL.", prometheus.ExponentialBuckets(0.001, 2, 14))
	s.BackendCommit = s.histogram("etcd", "disk", "backend_commit_duration_seconds",
		"The latency distributions of commit called by backend.", prometheus.ExponentialBuckets(0.001, 2, 14))
	s.GRPCStarted = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "grpc_server_started_total",
		Help: "Total number of RPCs started on the server."}, []string{"grpc_type", "grpc_service", "grpc_method"})
	s.GRPCHandled = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "grpc_server_handled_total",
		Help: "Total number of RPCs completed on the server, regardless of success or failure."},
		[]string{"grpc_type", "grpc_service", "grpc_method", "grpc_code"})
	s.HealthChecks = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "etcd", Subsystem: "server",
		Name: "healthchecks_total", Help: "The total number of each kind of healthcheck."},
		[]string{"type", "name", "status"})
	s.reg.MustRegister(s.WALFsync, s.BackendCommit, s.GRPCStarted, s.GRPCHandled, s.HealthChecks,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return s
}

func (s *Set) histogram(ns, sub, name, help string, buckets []float64) prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help, Buckets: buckets})
}

// GaugeFunc registers a gauge named fullName whose value f returns at
// scrape time. f must be cheap and safe for concurrent use. Registering a
// name twice panics: names are fixed by the code, not by input.
func (s *Set) GaugeFunc(fullName, help string, f func() float64) {
	s.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: fullName, Help: help}, f))
}

// CounterFunc registers a counter named fullName whose value f returns at
// scrape time; f must never decrease.
func (s *Set) CounterFunc(fullName, help string, f func() float64) {
	s.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: fullName, Help: help}, f))
}

// Handler serves the Set in Prometheus' text format (/metrics).
func (s *Set) Handler() http.Handler {
	return promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{})
}

// Bool is 1 for true and 0 for false, etcd's encoding of flags as gauges.
func Bool(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
