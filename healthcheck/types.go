package healthcheck

import (
	"time"

	"github.com/synod-db/synod/catalog"
)

// Check types the runner runs, as Consul names them; other types (udp,
// h2ping, script, alias, os_service) keep the status their registrant
// gives them.
const (
	TypeHTTP = "http"
	TypeTCP  = "tcp"
	TypeGRPC = "grpc"
	TypeTTL  = "ttl"
)

// Key names one check: its node and check ID.
type Key struct {
	Node    string
	CheckID string
}

// Result is a status with its output.
type Result struct {
	Status string
	Output string
}

// Spec is a check as the catalog holds it: how to run it and the status
// and output it has now, at the mod revision Rev of its document.
type Spec struct {
	Key
	ServiceID string
	Type      string
	Def       catalog.CheckDefinition
	Current   Result
	Rev       int64
}

// Update is a status the runner must write for a check.
type Update struct {
	Key
	Result
}

// ServiceRef names a service instance (the reaper's unit).
type ServiceRef struct {
	Node      string
	ServiceID string
}

// Options bound and tune the schedule; zero fields take the defaults.
type Options struct {
	MinInterval    time.Duration // Consul's floor on a check's interval: 1 s
	DefaultTimeout time.Duration // a probe's timeout when the check names none: 10 s
	MaxTimeout     time.Duration // the longest timeout a probe may have: 1 min
	OutputDefer    time.Duration // an output-only change is written at most this often: 5 min (Consul's check_update_interval)
	OutputBytes    int           // outputs are cut here: 4 KiB
	MaxChecks      int           // checks one member runs: 10,000
	ReapRetry      time.Duration // a failed deregistration is tried again after: 5 s
}

// DefaultOptions are the schedule's bounds unless configured otherwise.
var DefaultOptions = Options{MinInterval: time.Second, DefaultTimeout: 10 * time.Second, MaxTimeout: time.Minute,
	OutputDefer: 5 * time.Minute, OutputBytes: 4096, MaxChecks: 10000, ReapRetry: 5 * time.Second}

func (o Options) withDefaults() Options {
	d := DefaultOptions
	pick := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	pick(&o.MinInterval, d.MinInterval)
	pick(&o.DefaultTimeout, d.DefaultTimeout)
	pick(&o.MaxTimeout, d.MaxTimeout)
	pick(&o.OutputDefer, d.OutputDefer)
	pick(&o.ReapRetry, d.ReapRetry)
	if o.OutputBytes <= 0 {
		o.OutputBytes = d.OutputBytes
	}
	if o.MaxChecks <= 0 {
		o.MaxChecks = d.MaxChecks
	}
	return o
}

// Runs reports whether the runner runs checks of this type.
func Runs(typ string) bool {
	return typ == TypeHTTP || typ == TypeTCP || typ == TypeGRPC || typ == TypeTTL
}
