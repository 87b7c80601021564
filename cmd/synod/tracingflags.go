package main

import (
	"flag"

	"github.com/synod-db/synod/tracing"
)

// bindTracingFlags binds etcd's distributed tracing flags to c
// (docs/configuration.md); their values are checked by c.Validate.
func bindTracingFlags(fs *flag.FlagSet, c *tracing.Config) {
	fs.BoolVar(&c.Enabled, "enable-distributed-tracing", false, "Enable distributed tracing using OpenTelemetry Tracing: spans of every client RPC sent to an OTLP/gRPC collector.")
	fs.StringVar(&c.Address, "distributed-tracing-address", tracing.DefaultAddress, "Address (host:port) of the OpenTelemetry collector's OTLP/gRPC endpoint (plaintext), if tracing is enabled.")
	fs.StringVar(&c.ServiceName, "distributed-tracing-service-name", tracing.DefaultServiceName, "Service name of the spans (resource attribute service.name); use the same on every member.")
	fs.StringVar(&c.InstanceID, "distributed-tracing-instance-id", "", "Service instance ID of the spans (resource attribute service.instance.id); no default, must be unique per member.")
	fs.IntVar(&c.SamplingRate, "distributed-tracing-sampling-rate", 0, "Number of samples to collect per million spans (root spans; a sampled caller's trace is always continued).")
}
