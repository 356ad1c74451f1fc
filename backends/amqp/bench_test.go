package amqp

import (
	"context"
	"path/filepath"
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

// benchPublishers is how many goroutines publish concurrently in every run, as the
// request handlers of a service would.
const benchPublishers = 16

var benchPayload = []byte(`{"id":12345,"customer":"ada","total":99.95,"items":[{"sku":"A-1","qty":2}]}`)

// BenchmarkBusAmqp measures events/s from the first publish until the last message
// is handled (and, for the bus, every row of it stored), in one run at the backend's
// default settings on the test broker: raw Watermill on the backend (its publisher
// and subscriber, a plain router handler, nothing recorded), then the bus with durable
// recording, then the bus with buffered recording (SQLite in b.TempDir()).
// benchPublishers goroutines publish to one consumer. Run with -benchtime 3000x.
func BenchmarkBusAmqp(b *testing.B) {
	settings := map[string]any{"url": brokerURL(b)}
	b.StopTimer()
	raw := benchRaw(b, settings, b.N)
	durable := benchBus(b, settings, b.N, middleware.RecordDurable)
	buffered := benchBus(b, settings, b.N, middleware.RecordBuffered)
	b.ReportMetric(raw, "raw_events/s")
	b.ReportMetric(durable, "durable_events/s")
	b.ReportMetric(buffered, "buffered_events/s")
	b.ReportMetric(durable/raw, "durable/raw")
	b.ReportMetric(buffered/raw, "buffered/raw")
	b.ReportMetric(0, "ns/op")
}

// publishAll publishes n messages from benchPublishers goroutines.
func publishAll(b *testing.B, n int, publish func(*message.Message) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < benchPublishers; g++ {
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

// waitCounts waits until every counter reached n.
func waitCounts(b *testing.B, n int, counters ...*atomic.Int64) {
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

// warmUp publishes one message and waits until it is through (queue declared and
// bound), outside the measurement.
func warmUp(b *testing.B, publish func(*message.Message) error, counters ...*atomic.Int64) {
	if err := publish(bus.NewMessage(benchPayload)); err != nil {
		b.Fatal(err)
	}
	waitCounts(b, 1, counters...)
}

func benchRaw(b *testing.B, settings map[string]any, n int) float64 {
	backend, err := bus.OpenBackend(context.Background(), Name, settings, bus.BackendOptions{})
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
	topic := testTopic("bench-raw")
	var handled atomic.Int64
	router.AddConsumerHandler("bench-raw", topic, sub, func(*message.Message) error {
		handled.Add(1)
		return nil
	})
	go func() { _ = router.Run(context.Background()) }()
	defer router.Close()
	<-router.Running()
	publish := func(m *message.Message) error { return backend.Publisher().Publish(topic, m) }
	warmUp(b, publish, &handled)
	start := time.Now()
	b.StartTimer()
	publishAll(b, n, publish)
	waitCounts(b, n+1, &handled)
	b.StopTimer()
	return float64(n) / time.Since(start).Seconds()
}

// benchBus runs the bus in mode. The run ends when every message was handled and its
// produced and consumed rows are stored (in buffered mode they are written after the
// ack), counted by a change listener.
func benchBus(b *testing.B, settings map[string]any, n int, mode middleware.RecordMode) float64 {
	bb, err := bus.New(context.Background(), bus.Config{
		Backend: Name, BackendSettings: settings,
		Store:  bus.StoreConfig{Driver: "sqlite", DSN: "file:" + filepath.Join(b.TempDir(), "bench.db")},
		Record: bus.RecordConfig{Mode: mode},
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
	topic := testTopic("bench-bus")
	if err := bb.Handle("bench", topic, func(context.Context, *message.Message) error {
		handled.Add(1)
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	go func() { _ = bb.Run(context.Background()) }()
	<-bb.Running()
	publish := func(m *message.Message) error { return bb.Publish(context.Background(), topic, m) }
	warmUp(b, publish, &handled, &published, &consumed)
	start := time.Now()
	b.StartTimer()
	publishAll(b, n, publish)
	waitCounts(b, n+1, &handled, &published, &consumed)
	b.StopTimer()
	return float64(n) / time.Since(start).Seconds()
}
