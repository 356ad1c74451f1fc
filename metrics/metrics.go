// Package metrics holds the bus's own Prometheus metrics: ModelEvent changes recorded,
// retries, poisoned messages, redeliveries, the recorder's queue, store writes, consumer
// backlogs and process heartbeats. The bus registers them (with Watermill's router,
// publisher and subscriber metrics, from components/metrics) on the registry of
// bus.Config.Metrics; docs/observability.md lists every family with its labels and the
// queries of a dashboard.
//
// Labels are bounded: direction, status, topic, handler, reason, kind, and the process
// of the control plane; never a message id.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/go-eventbus/eventbus/modelevent"
)

// Namespace starts the name of every metric of the bus, Watermill's included.
const Namespace = "eventbus"

// The reasons of eventbus_redeliveries_total.
const (
	// ReasonNotRecorded: the row could not be stored (the store is unavailable).
	ReasonNotRecorded = "not_recorded"
	// ReasonAborted: the delivery was abandoned (the bus is closing, the subscription
	// ended).
	ReasonAborted = "aborted"
	// ReasonFailed: the handler failed and the message was not poisoned (no poison
	// topic, or publishing to it failed).
	ReasonFailed = "failed"
)

// The kinds of eventbus_store_write_errors_total.
const (
	// KindUnavailable: the store did not take the batch (connection, timeout, lock);
	// the recorder tries it again.
	KindUnavailable = "unavailable"
	// KindRejected: the store refused changes for their data (modelevent.ErrRejected)
	// and kept the others.
	KindRejected = "rejected"
)

// Options configures New.
type Options struct {
	// QueuedChanges reports the changes handed to the recorder and not written yet
	// (middleware.Recorder.QueuedChanges); it is called on every scrape. Nil: no
	// eventbus_recorder_queued_changes.
	QueuedChanges func() int64
	// QueueCapacity reports the recorder's queue bound, in Record calls
	// (middleware.Recorder.QueueCapacity). Nil: no eventbus_recorder_queue_capacity.
	QueueCapacity func() int
}

// Metrics are the bus's own metrics. Its methods are safe for concurrent use and do
// not allocate once a label combination has been seen.
type Metrics struct {
	recorded     *prometheus.CounterVec
	retries      *prometheus.CounterVec
	poisoned     *prometheus.CounterVec
	redeliveries *prometheus.CounterVec
	duplicates   *prometheus.CounterVec
	batchSize    prometheus.Histogram
	writeSeconds prometheus.Histogram
	writeErrors  *prometheus.CounterVec
	unavailable  prometheus.Counter
	rejected     prometheus.Counter

	// Polled holds the backlog and heartbeat gauges the bus refreshes in the background.
	Polled *Polled

	mu    sync.Mutex
	known map[recordedKey]recordedCounters
}

type recordedKey struct {
	direction modelevent.Direction
	status    modelevent.Status
	topic     string
	handler   string
}

type recordedCounters struct {
	recorded prometheus.Counter
	poisoned prometheus.Counter // nil unless the status is poisoned
}

// Buckets of the store write histograms: batches of 1 to 4096 changes, writes of 100µs
// to 10s.
var (
	BatchSizeBuckets    = prometheus.ExponentialBuckets(1, 2, 13)
	WriteSecondsBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
)

// New registers the bus's metrics on reg. It fails when one of them is registered
// already: give every bus a registry of its own, or wrap the registry for each bus
// with a label of its own, prometheus.WrapRegistererWith(prometheus.Labels{"bus":
// name}, reg).
func New(reg prometheus.Registerer, opts Options) (*Metrics, error) {
	if reg == nil {
		return nil, errors.New("metrics: nil registerer")
	}
	m := &Metrics{
		recorded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "events_recorded_total",
			Help: "ModelEvent changes stored, by direction (consumed, produced), the status they set, topic and handler (empty for produced).",
		}, []string{"direction", "status", "topic", "handler"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "retries_total",
			Help: "Handler attempts run again after a failed attempt, by topic and handler.",
		}, []string{"topic", "handler"}),
		poisoned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "poisoned_total",
			Help: "Messages sent to the poison queue and recorded as poisoned, by topic and handler.",
		}, []string{"topic", "handler"}),
		redeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "redeliveries_total",
			Help: "Deliveries this process nacked, which the broker delivers again, by topic, handler and reason (not_recorded, aborted, failed).",
		}, []string{"topic", "handler", "reason"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "duplicates_total",
			Help: "Deliveries acked without running the handler because the message's row for the idempotent consumer had already succeeded, by topic and handler.",
		}, []string{"topic", "handler"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "store_write_batch_size",
			Help:    "Changes per store write of the recorder (one group commit).",
			Buckets: BatchSizeBuckets,
		}),
		writeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "store_write_duration_seconds",
			Help:    "Duration of the recorder's store writes, failed ones included.",
			Buckets: WriteSecondsBuckets,
		}),
		writeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "store_write_errors_total",
			Help: "Failed store writes of the recorder, by kind: unavailable (retried) or rejected (changes refused for their data).",
		}, []string{"kind"}),
		Polled: newPolled(),
		known:  map[recordedKey]recordedCounters{},
	}
	m.unavailable = m.writeErrors.WithLabelValues(KindUnavailable)
	m.rejected = m.writeErrors.WithLabelValues(KindRejected)
	cs := []prometheus.Collector{m.recorded, m.retries, m.poisoned, m.redeliveries, m.duplicates, m.batchSize, m.writeSeconds, m.writeErrors, m.Polled}
	if opts.QueuedChanges != nil {
		queued := opts.QueuedChanges
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "recorder_queued_changes",
			Help: "Changes handed to the recorder and not stored yet: queued, or in the batch being written.",
		}, func() float64 { return float64(queued()) }))
	}
	if opts.QueueCapacity != nil {
		capacity := opts.QueueCapacity
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "recorder_queue_capacity",
			Help: "Bound of the recorder's queue, in Record calls (record.queue_size): a full queue blocks recording.",
		}, func() float64 { return float64(capacity()) }))
	}
	if err := register(reg, cs...); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers cs on reg, all or none.
func register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			return fmt.Errorf("metrics: register: %w (one registry per bus, or each bus's wrapped with prometheus.WrapRegistererWith and a label of its own)", err)
		}
	}
	return nil
}

// Changed counts a stored change: it is a middleware.Listener (Recorder.OnChange).
func (m *Metrics) Changed(_ context.Context, c modelevent.Change) {
	e := &c.Event
	k := recordedKey{e.Direction, e.Status, e.Topic, e.Handler}
	m.mu.Lock()
	cs, ok := m.known[k]
	if !ok {
		cs.recorded = m.recorded.WithLabelValues(string(e.Direction), string(e.Status), e.Topic, e.Handler)
		if e.Status == modelevent.StatusPoisoned {
			cs.poisoned = m.poisoned.WithLabelValues(e.Topic, e.Handler)
		}
		m.known[k] = cs
	}
	m.mu.Unlock()
	cs.recorded.Inc()
	if cs.poisoned != nil {
		cs.poisoned.Inc()
	}
}

// StoreWritten observes one store write: it is the middleware.RecorderObserver's.
func (m *Metrics) StoreWritten(changes int, took time.Duration, err error) {
	m.batchSize.Observe(float64(changes))
	m.writeSeconds.Observe(took.Seconds())
	switch {
	case err == nil:
	case errors.Is(err, modelevent.ErrRejected):
		m.rejected.Inc()
	default:
		m.unavailable.Inc()
	}
}

// Retrying counts a retry of handler: it is the middleware.RecorderObserver's.
func (m *Metrics) Retrying(handler, topic string) {
	m.retries.WithLabelValues(topic, handler).Inc()
}

// Duplicate counts a delivery of handler acked as a duplicate (an idempotent consumer).
func (m *Metrics) Duplicate(handler, topic string) {
	m.duplicates.WithLabelValues(topic, handler).Inc()
}

// Redelivered counts a delivery nacked for the reason given (ReasonNotRecorded,
// ReasonAborted, ReasonFailed).
func (m *Metrics) Redelivered(handler, topic, reason string) {
	m.redeliveries.WithLabelValues(topic, handler, reason).Inc()
}
