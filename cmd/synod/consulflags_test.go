package main

import (
	"strings"
	"testing"

	"github.com/synod-db/synod/server"
)

func TestCheckConsulFlags(t *testing.T) {
	for url, want := range map[string]string{
		"":                         "",
		"http://127.0.0.1:8500":    "",
		"http://[::1]:8500":        "",
		"https://127.0.0.1:8500":   "want an http:// URL",
		"http://127.0.0.1":         "want an http:// URL",
		"http://127.0.0.1:8500/v1": "want an http:// URL",
		"127.0.0.1:8500":           "want an http:// URL",
	} {
		err := checkConsulFlags(server.ConsulConfig{ListenURL: url, Datacenter: "dc1"})
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("%q: %v, want %q", url, err, want)
		}
	}
	if err := checkConsulFlags(server.ConsulConfig{ListenURL: "http://127.0.0.1:8500"}); err == nil {
		t.Error("an empty datacenter was accepted")
	}
}
