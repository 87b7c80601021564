package main

import (
	"strings"
	"testing"

	"github.com/synod-db/synod/tracing"
)

// etcd's tracing flags, from the command line, the environment or a
// configuration file, reach the member's tracing configuration; a bad
// sampling rate is refused with etcd's message only when tracing is on.
func TestTracingFlags(t *testing.T) {
	c, err := parseServe(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := tracing.Config{Address: "localhost:4317", ServiceName: "etcd"}
	if c.Tracing != want {
		t.Errorf("defaults: %+v, want %+v", c.Tracing, want)
	}
	c, err = parseServe(t, []string{"--enable-distributed-tracing", "--distributed-tracing-address=127.0.0.1:9",
		"--distributed-tracing-instance-id=m1", "--distributed-tracing-sampling-rate=100"},
		map[string]string{"ETCD_DISTRIBUTED_TRACING_SERVICE_NAME": "kv"})
	if err != nil {
		t.Fatal(err)
	}
	want = tracing.Config{Enabled: true, Address: "127.0.0.1:9", ServiceName: "kv", InstanceID: "m1", SamplingRate: 100}
	if c.Tracing != want {
		t.Errorf("flags: %+v, want %+v", c.Tracing, want)
	}
	c, err = parseServe(t, []string{"--config-file=" + writeConfig(t, "enable-distributed-tracing: true\ndistributed-tracing-instance-id: f\n")}, nil)
	if err != nil || !c.Tracing.Enabled || c.Tracing.InstanceID != "f" {
		t.Errorf("config file: %+v, %v", c.Tracing, err)
	}
	if _, err := parseServe(t, []string{"--distributed-tracing-sampling-rate=-1"}, nil); err != nil {
		t.Errorf("a rate is not checked while tracing is off (as etcd): %v", err)
	}
	for args, msg := range map[string]string{
		"--distributed-tracing-sampling-rate=-1":      "distributed tracing configurition is not valid: (tracing sampling rate must be positive)",
		"--distributed-tracing-sampling-rate=1000001": "distributed tracing configurition is not valid: (tracing sampling rate must be less than 1000000)",
	} {
		_, err := parseServe(t, []string{"--enable-distributed-tracing", args}, nil)
		if err == nil || err.Error() != msg {
			t.Errorf("%s: %v, want %q", args, err, msg)
		}
	}
	body := "enable-distributed-tracing: true\ndistributed-tracing-sampling-rate: 2000000\n"
	if _, err := parseServe(t, []string{"--config-file=" + writeConfig(t, body)}, nil); err == nil || !strings.Contains(err.Error(), "must be less than 1000000") {
		t.Errorf("config file rate: %v", err)
	}
}
