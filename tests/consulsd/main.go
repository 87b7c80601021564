// Command consulsd runs Prometheus' own Consul service discovery (the code
// behind consul_sd_configs) on a Prometheus configuration file and prints
// every update of target groups as one JSON line on stdout:
// {"job":..., "groups":[{"source":..., "targets":[{label: value}], "labels":{...}}]}.
// tests/e2e builds it (it is a module of its own, so Prometheus' many
// dependencies stay out of synod's go.mod) and points it at synod's Consul
// API.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/discovery/consul"
	"github.com/prometheus/prometheus/discovery/targetgroup"
)

type group struct {
	Source  string              `json:"source"`
	Targets []map[string]string `json:"targets"`
	Labels  map[string]string   `json:"labels"`
}

type update struct {
	Job    string  `json:"job"`
	Groups []group `json:"groups"`
}

func main() {
	file := flag.String("config.file", "prometheus.yml", "Prometheus configuration file")
	timeout := flag.Duration("timeout", time.Minute, "how long to run")
	flag.Parse()
	if err := run(*file, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "consulsd:", err)
		os.Exit(1)
	}
}

func run(file string, timeout time.Duration) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg, err := config.LoadFile(file, false, logger)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	reg := prometheus.NewRegistry()
	refresh := discovery.NewRefreshMetrics(reg)
	var mu sync.Mutex
	enc := json.NewEncoder(os.Stdout)
	var wg sync.WaitGroup
	for _, sc := range cfg.ScrapeConfigs {
		for _, sd := range sc.ServiceDiscoveryConfigs {
			c, ok := sd.(*consul.SDConfig)
			if !ok {
				continue
			}
			d, err := c.NewDiscoverer(discovery.DiscovererOptions{Logger: logger, Metrics: c.NewDiscovererMetrics(reg, refresh)})
			if err != nil {
				return err
			}
			ch := make(chan []*targetgroup.Group)
			wg.Add(2)
			go func() { defer wg.Done(); d.Run(ctx, ch) }()
			go func(job string) {
				defer wg.Done()
				for {
					select {
					case <-ctx.Done():
						return
					case tgs := <-ch:
						mu.Lock()
						enc.Encode(toUpdate(job, tgs))
						mu.Unlock()
					}
				}
			}(sc.JobName)
		}
	}
	wg.Wait()
	return nil
}

func toUpdate(job string, tgs []*targetgroup.Group) update {
	u := update{Job: job}
	for _, tg := range tgs {
		g := group{Source: tg.Source, Labels: map[string]string{}}
		for k, v := range tg.Labels {
			g.Labels[string(k)] = string(v)
		}
		for _, t := range tg.Targets {
			m := map[string]string{}
			for k, v := range t {
				m[string(k)] = string(v)
			}
			g.Targets = append(g.Targets, m)
		}
		u.Groups = append(u.Groups, g)
	}
	return u
}
