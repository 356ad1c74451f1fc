package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Backlog is the number of messages of Topic waiting for the consumer Handler, as its
// backend tells (bus.Backlogger).
type Backlog struct {
	Handler, Topic string
	Messages       int64
}

// Heartbeat is a process of the control plane and when it last reported.
type Heartbeat struct {
	// ID is the process id in the registry; Name its name (host:pid by default).
	ID, Name string
	LastSeen time.Time
}

// Polled exports what is slow to learn — consumer backlogs, the heartbeats of the
// control plane — from values a poller sets (Poll): a scrape reads them and does no
// I/O. The heartbeat age is computed at the scrape, so it grows between polls. It is a
// prometheus.Collector, safe for concurrent use.
type Polled struct {
	backlogDesc, ageDesc *prometheus.Desc

	mu         sync.Mutex
	backlogs   []Backlog
	heartbeats []Heartbeat
	now        func() time.Time
}

func newPolled() *Polled {
	return &Polled{
		backlogDesc: prometheus.NewDesc(Namespace+"_consumer_backlog_messages",
			"Messages of the topic not yet acked by the consumer, as the backend tells (Kafka lag, JetStream pending, queue depth); polled in the background.",
			[]string{"topic", "handler"}, nil),
		ageDesc: prometheus.NewDesc(Namespace+"_process_heartbeat_age_seconds",
			"Seconds since each process of the control plane last reported, from the process registry polled in the background.",
			[]string{"process", "name"}, nil),
		now: time.Now,
	}
}

// NewPolled registers a Polled on reg alone: the metrics of a process that runs no
// bus (eventbus serve) but watches the control plane.
func NewPolled(reg prometheus.Registerer) (*Polled, error) {
	p := newPolled()
	if err := register(reg, p); err != nil {
		return nil, err
	}
	return p, nil
}

// SetBacklogs replaces the backlogs exported; consumers left out have none.
func (p *Polled) SetBacklogs(b []Backlog) {
	p.mu.Lock()
	p.backlogs = b
	p.mu.Unlock()
}

// SetHeartbeats replaces the processes exported; processes left out have none.
func (p *Polled) SetHeartbeats(h []Heartbeat) {
	p.mu.Lock()
	p.heartbeats = h
	p.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (p *Polled) Describe(ch chan<- *prometheus.Desc) {
	ch <- p.backlogDesc
	ch <- p.ageDesc
}

// Collect implements prometheus.Collector.
func (p *Polled) Collect(ch chan<- prometheus.Metric) {
	p.mu.Lock()
	backlogs, heartbeats := p.backlogs, p.heartbeats
	p.mu.Unlock()
	for _, b := range backlogs {
		ch <- prometheus.MustNewConstMetric(p.backlogDesc, prometheus.GaugeValue, float64(b.Messages), b.Topic, b.Handler)
	}
	now := p.now()
	for _, h := range heartbeats {
		ch <- prometheus.MustNewConstMetric(p.ageDesc, prometheus.GaugeValue, max(now.Sub(h.LastSeen).Seconds(), 0), h.ID, h.Name)
	}
}

// Poll calls poll at once and then every interval until ctx ends, each call bounded by
// timeout. It returns when ctx ends.
func Poll(ctx context.Context, interval, timeout time.Duration, poll func(context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, timeout)
		poll(pctx)
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
