package main

import (
	"context"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/control"
	"github.com/go-eventbus/eventbus/metrics"
)

// newRegistry returns a Prometheus registry with the Go and process collectors. The
// demo gives one to its bus (Config.Metrics), which turns on Watermill's per-message
// metrics too.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// metricsRoute serves the metrics of b at /metrics, beside the console and outside its
// authorizer, like the probes: they hold counts, topic and handler names, no payload.
func metricsRoute(b *bus.Bus) route { return route{"GET /metrics", b.MetricsHandler()} }

// controlMetricsRoute serves, for a process that runs no bus (serve), the Go and
// process collectors and the heartbeat age of every process of the control plane in
// ctl, polled every interval (0: bus.DefaultMetricsPollInterval) until ctx ends.
func controlMetricsRoute(ctx context.Context, ctl *control.Store, interval time.Duration, stderr io.Writer) (route, error) {
	if interval <= 0 {
		interval = bus.DefaultMetricsPollInterval
	}
	reg := newRegistry()
	p, err := metrics.NewPolled(reg)
	if err != nil {
		return route{}, err
	}
	go metrics.Poll(ctx, interval, min(interval, 10*time.Second), func(ctx context.Context) {
		ps, err := ctl.Processes(ctx)
		if err != nil {
			if ctx.Err() == nil {
				_, _ = io.WriteString(stderr, "metrics: process list: "+err.Error()+"\n")
			}
			return
		}
		hs := make([]metrics.Heartbeat, len(ps))
		for i, p := range ps {
			hs[i] = metrics.Heartbeat{ID: p.ID, Name: p.Name, LastSeen: p.LastSeen}
		}
		p.SetHeartbeats(hs)
	})
	return route{"GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{})}, nil
}
