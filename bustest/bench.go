package bustest

import (
	"bufio"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/middleware"
	"github.com/go-eventbus/eventbus/modelevent"
)

// BenchPublishers is how many goroutines publish concurrently in every run of
// BenchmarkBackend, as the request handlers of a service would.
const BenchPublishers = 16

// benchPayload is the 100-byte JSON body of every benchmark message.
var benchPayload = []byte(`{"id":12345,"customer":"ada","total":99.95,"items":[{"sku":"A-1","qty":2}]}`)

// BenchOptions configures BenchmarkBackend.
type BenchOptions struct {
	// Config returns the Backend and BackendSettings that every run of one benchmark
	// uses (the backend's defaults, as a user would configure it). It is called once per
	// BenchmarkBackend, before the timer stops; the other fields of the config are
	// ignored.
	Config func(b *testing.B) bus.Config
	// Topic returns a fresh topic name for the run named run ("raw" or "bus"). Default
	// "bench.<run>.<short uuid>".
	Topic func(run string) string
	// InitializeRaw makes the raw run call SubscribeInitialize on its subscriber for the
	// topic before subscribing, for backends whose plain subscriber does not provision
	// the topic on its own (NATS: the stream).
	InitializeRaw bool
}

// BenchmarkBackend measures events/s from the first publish until the last message is
// handled (and, for the bus, every row of it stored), in one run on the backend of
// opts.Config: raw Watermill on the backend (its publisher and subscriber, a plain router
// handler, nothing recorded), then the bus with durable recording, then the bus with
// buffered recording (SQLite in b.TempDir()). BenchPublishers goroutines publish b.N
// messages to one consumer; one message before them goes through untimed (topics,
// queues and consumer groups set up). It reports raw_events/s, durable_events/s,
// buffered_events/s, durable/raw and buffered/raw, the process's CPU µs per event of
// each run (`_cpu-µs/event`: a broker in another process not included; with
// BrokerPIDsEnv set, its CPU per event too), and ns/op as 0
// (one op is not one event of one run). A fourth run, durable-produced-buffered, is
// durable recording with record.produced_mode buffered: consumed rows are stored before
// the ack, published rows in the background (the publishers do not wait for a commit).
// For each bus run it also reports what the recorder's writer did, from the bus's own
// metrics: rows per store write (`_rows/commit`), the mean time of a
// write (`_µs/commit`) and the share of the run the writer spent writing
// (`_writer-busy`; near 1, the writer is the limit).
func BenchmarkBackend(b *testing.B, opts BenchOptions) {
	if opts.Topic == nil {
		opts.Topic = func(run string) string { return "bench." + run + "." + watermill.NewShortUUID() }
	}
	cfg := opts.Config(b)
	b.StopTimer()
	raw := benchRaw(b, cfg, opts)
	durable := benchBus(b, cfg, opts, middleware.RecordDurable, "")
	buffered := benchBus(b, cfg, opts, middleware.RecordBuffered, "")
	pb := benchBus(b, cfg, opts, middleware.RecordDurable, middleware.RecordBuffered)
	raw.report(b, "raw", raw.rate)
	durable.report(b, "durable", raw.rate)
	buffered.report(b, "buffered", raw.rate)
	pb.report(b, "durable-produced-buffered", raw.rate)
	b.ReportMetric(0, "ns/op")
}

// runStats is what one run measured.
type runStats struct {
	rate, cpu, brokerCPU float64 // events/s, CPU µs per event of this process and of the broker's (BrokerPIDsEnv)
	writer               writerStats
}

func (s runStats) report(b *testing.B, name string, raw float64) {
	b.ReportMetric(s.rate, name+"_events/s")
	b.ReportMetric(s.cpu, name+"_cpu-µs/event")
	if os.Getenv(BrokerPIDsEnv) != "" {
		b.ReportMetric(s.brokerCPU, name+"_broker-cpu-µs/event")
	}
	if name != "raw" {
		b.ReportMetric(s.rate/raw, name+"/raw")
	}
	s.writer.report(b, name)
}

// writerStats is what the recorder's writer did during a bus run.
type writerStats struct {
	writes, changes, seconds float64 // store writes, changes written, time in writes
	run                      time.Duration
}

func (w writerStats) report(b *testing.B, mode string) {
	if w.writes == 0 || w.run <= 0 {
		return
	}
	b.ReportMetric(w.changes/w.writes, mode+"_rows/commit")
	b.ReportMetric(w.seconds/w.writes*1e6, mode+"_µs/commit")
	b.ReportMetric(w.seconds/w.run.Seconds(), mode+"_writer-busy")
}

// scrapeWriter reads the store-write histograms (count and sum of
// eventbus_store_write_batch_size and eventbus_store_write_duration_seconds) from the
// bus's metrics handler.
func scrapeWriter(b *testing.B, bb *bus.Bus) writerStats {
	rec := httptest.NewRecorder()
	bb.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	var w writerStats
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		switch name {
		case "eventbus_store_write_batch_size_count":
			w.writes = v
		case "eventbus_store_write_batch_size_sum":
			w.changes = v
		case "eventbus_store_write_duration_seconds_sum":
			w.seconds = v
		}
	}
	return w
}

// benchRaw runs raw Watermill on the backend of cfg.
func benchRaw(b *testing.B, cfg bus.Config, opts BenchOptions) runStats {
	backend, err := bus.OpenBackend(context.Background(), cfg.Backend, cfg.BackendSettings, bus.BackendOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer backend.Close()
	sub, err := backend.Subscriber("bench-raw")
	if err != nil {
		b.Fatal(err)
	}
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		b.Fatal(err)
	}
	topic := opts.Topic("raw")
	if opts.InitializeRaw {
		si, ok := sub.(message.SubscribeInitializer)
		if !ok {
			b.Fatalf("InitializeRaw: the %s subscriber %T has no SubscribeInitialize", cfg.Backend, sub)
		}
		if err := si.SubscribeInitialize(topic); err != nil {
			b.Fatal(err)
		}
	}
	var handled atomic.Int64
	router.AddConsumerHandler("bench-raw", topic, sub, func(*message.Message) error {
		handled.Add(1)
		return nil
	})
	go func() { _ = router.Run(context.Background()) }()
	defer router.Close()
	<-router.Running()
	publish := func(m *message.Message) error { return backend.Publisher().Publish(topic, m) }
	rate, cpu, brokerCPU := measure(b, publish, nil, &handled)
	return runStats{rate: rate, cpu: cpu, brokerCPU: brokerCPU}
}

// benchBus runs the bus in mode (produced rows in producedMode, "" for mode) on the
// backend of cfg and returns events/s, CPU per event and what the writer did in the
// timed part. The run ends when every message was handled and its produced and
// consumed rows are stored (in buffered mode they are written after the ack), counted
// by a change listener.
func benchBus(b *testing.B, cfg bus.Config, opts BenchOptions, mode, producedMode middleware.RecordMode) runStats {
	bb, err := bus.New(context.Background(), bus.Config{
		Backend: cfg.Backend, BackendSettings: cfg.BackendSettings,
		Store:  bus.StoreConfig{Driver: "sqlite", DSN: "file:" + filepath.Join(b.TempDir(), "bench.db")},
		Record: bus.RecordConfig{Mode: mode, ProducedMode: producedMode},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer bb.Close()
	var handled, published, consumed atomic.Int64
	bb.OnChange(func(_ context.Context, c modelevent.Change) {
		switch {
		case c.Event.Direction == modelevent.Produced && c.Event.Status == modelevent.StatusPublished:
			published.Add(1)
		case c.Event.Direction == modelevent.Consumed && c.Event.Status == modelevent.StatusSucceeded:
			consumed.Add(1)
		}
	})
	topic := opts.Topic("bus")
	if err := bb.Handle("bench", topic, func(context.Context, *message.Message) error {
		handled.Add(1)
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	go func() { _ = bb.Run(context.Background()) }()
	<-bb.Running()
	publish := func(m *message.Message) error { return bb.Publish(context.Background(), topic, m) }
	var before writerStats
	rate, cpu, brokerCPU := measure(b, publish, func() { before = scrapeWriter(b, bb) }, &handled, &published, &consumed)
	after := scrapeWriter(b, bb)
	return runStats{rate: rate, cpu: cpu, brokerCPU: brokerCPU, writer: writerStats{writes: after.writes - before.writes, changes: after.changes - before.changes,
		seconds: after.seconds - before.seconds, run: time.Duration(float64(b.N) / rate * float64(time.Second))}}
}

// measure sends one message through untimed, calls warm (when not nil), then times b.N
// more from their first publish until every counter counted them, and returns events/s
// and the CPU µs per event of this process and of the broker's (BrokerPIDsEnv). The
// timer is stopped when it is called and when it returns.
func measure(b *testing.B, publish func(*message.Message) error, warm func(), counters ...*atomic.Int64) (rate, cpuPerEvent, brokerCPUPerEvent float64) {
	if err := publish(bus.NewMessage(benchPayload)); err != nil {
		b.Fatal(err)
	}
	WaitCounts(b, 1, counters...)
	if warm != nil {
		warm()
	}
	start, cpu, brokerCPU := time.Now(), cpuSeconds(), brokerCPUSeconds()
	b.StartTimer()
	PublishAll(b, b.N, publish)
	WaitCounts(b, b.N+1, counters...)
	b.StopTimer()
	perEvent := func(s float64) float64 { return s * 1e6 / float64(b.N) }
	return float64(b.N) / time.Since(start).Seconds(), perEvent(cpuSeconds() - cpu), perEvent(brokerCPUSeconds() - brokerCPU)
}

// PublishAll publishes n messages of the benchmark payload (a 76-byte JSON order) from
// BenchPublishers goroutines with publish, as the request handlers of a service would.
func PublishAll(b *testing.B, n int, publish func(*message.Message) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < BenchPublishers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if err := publish(bus.NewMessage(benchPayload)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// WaitCounts waits until every counter reached n, for at most five minutes.
func WaitCounts(b *testing.B, n int, counters ...*atomic.Int64) {
	deadline := time.Now().Add(5 * time.Minute)
	for _, c := range counters {
		for c.Load() < int64(n) {
			if time.Now().After(deadline) {
				b.Fatalf("reached %d of %d", c.Load(), n)
			}
			time.Sleep(200 * time.Microsecond)
		}
	}
}
