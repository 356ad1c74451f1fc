package nats

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/bus"
)

// BenchmarkBusNATS measures events/s from publish to handled: through the bus with
// durable recording (SQLite in b.TempDir()), and through raw Watermill on the same
// backend (same publisher and subscriber, a plain router handler, no recording).
// Run with e.g. -benchtime=2000x; sub-benchmarks for the embedded server and, when
// reachable, the shared server.
func BenchmarkBusNATS(b *testing.B) {
	targets := []struct {
		name     string
		settings func(b *testing.B) map[string]any
	}{
		{"embedded", func(b *testing.B) map[string]any { return embeddedSettings(b) }},
		{"server", func(b *testing.B) map[string]any { return serverSettings(b) }},
	}
	for _, tg := range targets {
		b.Run(tg.name, func(b *testing.B) {
			settings := tg.settings(b)
			var raw, recorded float64
			b.Run("raw", func(b *testing.B) { raw = benchRaw(b, settings) })
			b.Run("bus", func(b *testing.B) { recorded = benchBus(b, settings) })
			if raw > 0 {
				b.Logf("%s: bus %.0f events/s, raw watermill %.0f events/s, ratio %.2f", tg.name, recorded, raw, recorded/raw)
			}
		})
	}
}

func benchBus(b *testing.B, settings map[string]any) float64 {
	bb, err := bus.New(context.Background(), bus.Config{
		Backend: "nats", BackendSettings: settings,
		Store: bus.StoreConfig{Driver: "sqlite", DSN: "file:" + filepath.Join(b.TempDir(), "bench.db")},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer bb.Close()
	topic := "bench.bus." + watermill.NewShortUUID()
	var handled atomic.Int64
	done := make(chan struct{})
	n := int64(b.N)
	if err := bb.Handle("bench", topic, func(ctx context.Context, msg *message.Message) error {
		if handled.Add(1) == n {
			close(done)
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	go func() { _ = bb.Run(context.Background()) }()
	<-bb.Running()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if err := bb.Publish(context.Background(), topic, message.NewMessage("", []byte(fmt.Sprint(i)))); err != nil {
			b.Fatal(err)
		}
	}
	waitDone(b, done)
	rate := float64(b.N) / time.Since(start).Seconds()
	b.StopTimer()
	b.ReportMetric(rate, "events/s")
	return rate
}

func benchRaw(b *testing.B, settings map[string]any) float64 {
	backend := openBackend(b, settings)
	sub, err := backend.Subscriber("bench-raw")
	if err != nil {
		b.Fatal(err)
	}
	router, err := message.NewRouter(message.RouterConfig{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	topic := "bench.raw." + watermill.NewShortUUID()
	var handled atomic.Int64
	done := make(chan struct{})
	n := int64(b.N)
	router.AddConsumerHandler("bench-raw", topic, sub, func(msg *message.Message) error {
		if handled.Add(1) == n {
			close(done)
		}
		return nil
	})
	go func() { _ = router.Run(context.Background()) }()
	defer router.Close()
	<-router.Running()
	pub := backend.Publisher()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if err := pub.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte(fmt.Sprint(i)))); err != nil {
			b.Fatal(err)
		}
	}
	waitDone(b, done)
	rate := float64(b.N) / time.Since(start).Seconds()
	b.StopTimer()
	b.ReportMetric(rate, "events/s")
	return rate
}

func waitDone(b *testing.B, done <-chan struct{}) {
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		b.Fatal("not every event was handled within 2m")
	}
}
