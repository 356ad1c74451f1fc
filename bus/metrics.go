package bus

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	wmetrics "github.com/ThreeDotsLabs/watermill/components/metrics"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/go-eventbus/eventbus/metrics"
	"github.com/go-eventbus/eventbus/middleware"
	"github.com/go-eventbus/eventbus/modelevent"
)

// DefaultMetricsPollInterval is the default of Config.MetricsPollInterval.
const DefaultMetricsPollInterval = 15 * time.Second

// metricsState is the part of a Bus that metrics.go keeps.
type metricsState struct {
	registry    prometheus.Registerer
	metrics     *metrics.Metrics
	wmetrics    *wmetrics.PrometheusMetricsBuilder // nil: Config.Metrics not set
	metricsDone chan struct{}                      // closed when the poller stopped; nil: none
	failing     failingRows                        // of the writer goroutine (changed)
}

// setupMetrics registers the bus's metrics and Watermill's publisher metrics on the
// configured registry (a new one, with the Go and process collectors, when there is
// none) and decorates the publisher. It runs before the recorder is made.
func (b *Bus) setupMetrics() error {
	reg := b.cfg.Metrics
	if reg == nil {
		r := prometheus.NewRegistry()
		r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		reg = r
	}
	b.registry = reg
	var err error
	b.metrics, err = metrics.New(reg, metrics.Options{
		QueuedChanges: func() int64 {
			if b.rec == nil {
				return 0
			}
			return b.rec.QueuedChanges()
		},
		QueueCapacity: func() int {
			if b.rec == nil {
				return 0
			}
			return b.rec.QueueCapacity()
		},
	})
	if err != nil {
		return err
	}
	if b.cfg.Metrics == nil {
		// Watermill's metrics cost a label map and a goroutine per message (about
		// 6-9 µs of CPU per event here): only on a registry the user asked for.
		return nil
	}
	wm := wmetrics.NewPrometheusMetricsBuilder(reg, metrics.Namespace, "")
	b.wmetrics = &wm
	if b.publisher, err = b.wmetrics.DecoratePublisher(b.publisher); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

// instrument adds the metrics that need the recorder and the router: ModelEvent changes
// by a recorder listener (which also logs poisoned messages), Watermill's handler and
// subscriber metrics, and the count of nacked deliveries.
func (b *Bus) instrument() {
	b.rec.OnChange(b.changed)
	if b.wmetrics != nil {
		b.wmetrics.AddPrometheusRouterMetrics(b.router)
	}
	b.router.AddMiddleware(b.countRedeliveries)
}

// changed counts a stored change and logs a poisoned message at warn, with the row
// id: it runs on the recorder's writer goroutine, after the store took the change.
func (b *Bus) changed(ctx context.Context, c modelevent.Change) {
	b.metrics.Changed(ctx, c)
	e := &c.Event
	if e.Direction != modelevent.Consumed {
		return
	}
	switch e.Status {
	case modelevent.StatusRetrying, modelevent.StatusFailed:
		b.failing.remember(e)
	case modelevent.StatusSucceeded:
		b.failing.forget(e)
	case modelevent.StatusPoisoned:
		b.log.Warn("eventbus: message poisoned", "handler", e.Handler, "topic", e.Topic,
			"message_uuid", e.MessageUUID, "event_id", b.failing.forget(e), "reason", e.LastError, "poison_topic", b.cfg.PoisonTopic)
	}
}

// failingRows remembers the row ids of consumed messages between their first failed
// attempt and their outcome, for the log of a poisoned message: the store fills in the
// id of a change only when the change creates its row, and a poisoned row was created
// by the change of its first failure. Only the recorder's listener calls use it, one at
// a time; it holds the messages failing now, at most maxFailingRows.
type failingRows map[failingKey]string

type failingKey struct{ uuid, handler string }

const maxFailingRows = 4096

func (f *failingRows) remember(e *modelevent.ModelEvent) {
	if *f == nil || len(*f) >= maxFailingRows {
		*f = failingRows{} // rows failing for good without being poisoned: start over
	}
	k := failingKey{e.MessageUUID, e.Handler}
	if _, ok := (*f)[k]; !ok {
		(*f)[k] = e.ID
	}
}

// forget returns the id remembered for e's row (e's own when none) and forgets it.
func (f failingRows) forget(e *modelevent.ModelEvent) string {
	if len(f) == 0 {
		return e.ID
	}
	k := failingKey{e.MessageUUID, e.Handler}
	id, ok := f[k]
	if !ok {
		return e.ID
	}
	delete(f, k)
	return id
}

// countRedeliveries is router middleware: a delivery that ends in an error is nacked,
// and the broker delivers the message again; it counts those by reason. A delivery
// that succeeds costs one call.
func (b *Bus) countRedeliveries(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		out, err := h(msg)
		if err != nil {
			b.redelivered(msg, err)
		}
		return out, err
	}
}

func (b *Bus) redelivered(msg *message.Message, err error) {
	reason := metrics.ReasonFailed
	switch {
	case errors.Is(err, middleware.ErrNotRecorded):
		reason = metrics.ReasonNotRecorded
	case errors.Is(err, middleware.ErrAborted):
		reason = metrics.ReasonAborted
	}
	handler, topic := middleware.ConsumerFromContext(msg.Context())
	b.metrics.Redelivered(handler, topic, reason)
}

// startMetricsPoller refreshes the backlog of every consumer (when the backend is a
// Backlogger) and the heartbeats of the control plane every MetricsPollInterval, in
// the background, until Close starts: a scrape only reads what the last poll found.
func (b *Bus) startMetricsPoller() {
	bl, canTell := b.backend.(Backlogger)
	if !canTell && b.ctl == nil {
		return
	}
	interval := b.cfg.MetricsPollInterval
	b.metricsDone = make(chan struct{})
	go func() {
		defer close(b.metricsDone)
		metrics.Poll(b.stopping, interval, min(interval, 10*time.Second), func(ctx context.Context) {
			if canTell {
				b.pollBacklogs(ctx, bl)
			}
			if b.ctl != nil {
				b.pollHeartbeats(ctx)
			}
		})
	}()
}

func (b *Bus) pollBacklogs(ctx context.Context, bl Backlogger) {
	consumers := b.Consumers()
	out := make([]metrics.Backlog, 0, len(consumers))
	for _, c := range consumers {
		n, err := bl.Backlog(ctx, c.Name, c.Topic)
		if err != nil {
			if ctx.Err() != nil {
				return // keep the previous poll's values
			}
			b.log.Debug("eventbus: metrics: backlog unknown", "handler", c.Name, "topic", c.Topic, "error", err)
			continue
		}
		out = append(out, metrics.Backlog{Handler: c.Name, Topic: c.Topic, Messages: n})
	}
	b.metrics.Polled.SetBacklogs(out)
}

func (b *Bus) pollHeartbeats(ctx context.Context) {
	ps, err := b.ctl.Processes(ctx)
	if err != nil {
		b.log.Debug("eventbus: metrics: process list unknown", "error", err)
		return
	}
	out := make([]metrics.Heartbeat, len(ps))
	for i, p := range ps {
		out[i] = metrics.Heartbeat{ID: p.ID, Name: p.Name, LastSeen: p.LastSeen}
	}
	b.metrics.Polled.SetHeartbeats(out)
}

// Metrics returns the registerer the bus's metrics are on: Config.Metrics, or the
// registry the bus made.
func (b *Bus) Metrics() prometheus.Registerer { return b.registry }

// MetricsHandler serves the bus's metrics in the Prometheus exposition format
// (promhttp), to mount anywhere, e.g. mux.Handle("GET /metrics", b.MetricsHandler()).
// When Config.Metrics is a Registerer that cannot be gathered (not a
// prometheus.Gatherer, e.g. a wrapped one), it answers 501: serve that registry
// yourself.
func (b *Bus) MetricsHandler() http.Handler {
	g, ok := b.registry.(prometheus.Gatherer)
	if !ok {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "eventbus: Config.Metrics is not a prometheus.Gatherer: serve its registry with promhttp", http.StatusNotImplemented)
		})
	}
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{})
}
