package kafka_test

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
)

const benchPartitions = 4

// BenchmarkBusKafka measures events/s from publish to handled: through the bus with
// durable recording (SQLite in b.TempDir()), and through bare Watermill on the same
// broker (the backend's publisher and subscriber, a plain router handler, nothing
// recorded). Topics have 4 partitions; 8 goroutines publish.
func BenchmarkBusKafka(b *testing.B) {
	hosts := startKafka(b)
	cfg := settings(hosts, "partitions", benchPartitions)
	const publishers = 8
	n := b.N

	// Bare Watermill on the same backend.
	backend, err := bus.OpenBackend(context.Background(), "kafka", cfg, bus.BackendOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer backend.Close()
	rawTopic := "bench.raw." + watermill.NewShortUUID()
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		b.Fatal(err)
	}
	sub, err := backend.Subscriber("bench-raw")
	if err != nil {
		b.Fatal(err)
	}
	var rawDone atomic.Int64
	rawAll := make(chan struct{})
	router.AddConsumerHandler("raw", rawTopic, sub, func(msg *message.Message) error {
		if rawDone.Add(1) == int64(n) {
			close(rawAll)
		}
		return nil
	})
	go func() { _ = router.Run(context.Background()) }()
	<-router.Running()
	defer router.Close()

	// The bus.
	bb, err := bus.New(context.Background(), bus.Config{
		Backend: "kafka", BackendSettings: cfg,
		Store: bus.StoreConfig{Driver: "sqlite", DSN: "file:" + filepath.Join(b.TempDir(), "events.db")},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer bb.Close()
	busTopic := "bench.bus." + watermill.NewShortUUID()
	var busDone atomic.Int64
	busAll := make(chan struct{})
	if err := bb.Handle("bench-bus", busTopic, func(ctx context.Context, msg *message.Message) error {
		if busDone.Add(1) == int64(n) {
			close(busAll)
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	go func() { _ = bb.Run(context.Background()) }()
	<-bb.Running()

	// Warm up both paths (topic creation, group join) outside the measurement.
	warm := func(publish func(*message.Message) error) {
		if err := publish(message.NewMessage(watermill.NewUUID(), []byte("warm"))); err != nil {
			b.Fatal(err)
		}
	}
	rawPublish := func(m *message.Message) error { return backend.Publisher().Publish(rawTopic, m) }
	busPublish := func(m *message.Message) error { return bb.Publish(context.Background(), busTopic, m) }
	warm(rawPublish) // the warm-up message is the first of the n each handler counts
	warm(busPublish)

	run := func(publish func(*message.Message) error, all <-chan struct{}) float64 {
		start := time.Now()
		var wg sync.WaitGroup
		var next atomic.Int64
		for w := 0; w < publishers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= int64(n-1) {
					if err := publish(message.NewMessage(watermill.NewUUID(), []byte(`{"id":1}`))); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		published := time.Since(start)
		select {
		case <-all:
		case <-time.After(5 * time.Minute):
			b.Fatal("not every message was handled")
		}
		b.Logf("published %d in %v, handled all in %v", n, published, time.Since(start))
		return float64(n) / time.Since(start).Seconds()
	}
	b.ResetTimer()
	raw := run(rawPublish, rawAll)
	viaBus := run(busPublish, busAll)
	b.StopTimer()
	b.ReportMetric(viaBus, "bus_events/s")
	b.ReportMetric(raw, "raw_events/s")
	b.ReportMetric(viaBus/raw, "bus/raw")
	b.ReportMetric(0, "ns/op")
}
