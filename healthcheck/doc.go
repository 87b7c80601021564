// Package healthcheck is the pure core of the Consul health-check runner:
// which checks are due (Schedule), what status a probe's result gives
// (Consul's SuccessBeforePassing/FailuresBeforeCritical), when a status
// must be written (only when it changes), when a TTL check expires, when a
// critical service is reaped (DeregisterCriticalServiceAfter), and which
// member runs which node's checks (Owned). It reads no clock and does no
// I/O: the caller passes the time in; package checkrunner runs the probes
// and writes. See docs/discovery.md, "Health checks".
package healthcheck
