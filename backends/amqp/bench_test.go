package amqp

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/bus"
)

// benchPublishers is how many goroutines publish concurrently, in both runs.
const benchPublishers = 16

// BenchmarkBusAmqp measures events/s from Publish to handled through the bus with
// durable recording (SQLite in b.TempDir()), beside raw Watermill on the same broker
// (the backend's publisher and subscriber, a plain router handler, no recording), in
// the same run. Both publish from benchPublishers goroutines to one consumer, whose
// subscription runs 1 or 8 AMQP consumers (the concurrency setting).
func BenchmarkBusAmqp(b *testing.B) {
	url := brokerURL(b)
	for _, c := range []int{1, 8} {
		b.Run(fmt.Sprintf("concurrency=%d", c), func(b *testing.B) {
			settings := map[string]any{"url": url, "concurrency": c}
			b.StopTimer()
			raw := benchRaw(b, settings, b.N)
			onBus := benchBus(b, settings, b.N)
			b.ReportMetric(onBus, "events/s")
			b.ReportMetric(raw, "raw-events/s")
			b.ReportMetric(onBus/raw, "bus/raw")
		})
	}
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
				if err := publish(message.NewMessage(watermill.NewUUID(), []byte(`{"id":1,"total":"9.99"}`))); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func waitHandled(b *testing.B, handled *atomic.Int64, n int) {
	deadline := time.Now().Add(5 * time.Minute)
	for handled.Load() < int64(n) {
		if time.Now().After(deadline) {
			b.Fatalf("handled %d of %d", handled.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func benchRaw(b *testing.B, settings map[string]any, n int) float64 {
	backend, err := bus.OpenBackend(context.Background(), Name, settings, bus.BackendOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer backend.Close()
	topic := testTopic("bench-raw")
	sub, err := backend.Subscriber("raw")
	if err != nil {
		b.Fatal(err)
	}
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		b.Fatal(err)
	}
	var handled atomic.Int64
	router.AddConsumerHandler("raw", topic, sub, func(*message.Message) error {
		handled.Add(1)
		return nil
	})
	go func() { _ = router.Run(context.Background()) }()
	<-router.Running()
	defer router.Close()
	start := time.Now()
	b.StartTimer()
	publishAll(b, n, func(m *message.Message) error { return backend.Publisher().Publish(topic, m) })
	waitHandled(b, &handled, n)
	b.StopTimer()
	return float64(n) / time.Since(start).Seconds()
}

func benchBus(b *testing.B, settings map[string]any, n int) float64 {
	eb, err := bus.New(context.Background(), bus.Config{
		Backend:         Name,
		BackendSettings: settings,
		Store:           bus.StoreConfig{Driver: "sqlite", DSN: "file:" + filepath.Join(b.TempDir(), "events.db")},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer eb.Close()
	topic := testTopic("bench-bus")
	var handled atomic.Int64
	if err := eb.Handle("bench", topic, func(ctx context.Context, msg *message.Message) error {
		handled.Add(1)
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	go func() { _ = eb.Run(context.Background()) }()
	<-eb.Running()
	ctx := context.Background()
	start := time.Now()
	b.StartTimer()
	publishAll(b, n, func(m *message.Message) error { return eb.Publish(ctx, topic, m) })
	waitHandled(b, &handled, n)
	b.StopTimer()
	rate := float64(n) / time.Since(start).Seconds()
	return rate
}
