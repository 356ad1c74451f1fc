package sqlbackend_test

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

// BenchmarkBusSQL measures events/s from publish to handled through the bus with
// durable recording (SQLite store in b.TempDir()), beside raw Watermill on the same
// backend (its publisher and a subscriber, a plain router handler, no recording).
// Messages are published from 8 goroutines.
func BenchmarkBusSQL(b *testing.B) {
	for _, tg := range targets {
		b.Run(tg.driver, func(b *testing.B) {
			dsn := tg.dsn(b)
			raw := benchRaw(b, tg.driver, dsn)
			busRate := benchBus(b, tg.driver, dsn)
			b.ReportMetric(raw, "raw_events/s")
			b.ReportMetric(busRate, "bus_events/s")
			b.ReportMetric(busRate/raw, "bus/raw")
		})
	}
}

func publishAll(b *testing.B, publish func(*message.Message) error) {
	const workers = 8
	var next atomic.Int64
	errc := make(chan error, workers)
	for w := 0; w < workers; w++ {
		go func() {
			for next.Add(1) <= int64(b.N) {
				if err := publish(message.NewMessage(watermill.NewUUID(), []byte(`{"n":1}`))); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	for w := 0; w < workers; w++ {
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	}
}

func waitCount(b *testing.B, n *atomic.Int64) {
	deadline := time.Now().Add(5 * time.Minute)
	for n.Load() < int64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("handled %d of %d", n.Load(), b.N)
		}
		time.Sleep(time.Millisecond)
	}
}

func benchRaw(b *testing.B, driver, dsn string) float64 {
	be, err := bus.OpenBackend(context.Background(), "sql", settings(driver, dsn), bus.BackendOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	topic := "bench.raw." + isolatedName()
	sub, err := be.Subscriber("raw")
	if err != nil {
		b.Fatal(err)
	}
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		b.Fatal(err)
	}
	var handled atomic.Int64
	router.AddConsumerHandler("raw", topic, sub, func(*message.Message) error { handled.Add(1); return nil })
	go func() { _ = router.Run(context.Background()) }()
	<-router.Running()
	defer router.Close()
	b.ResetTimer()
	start := time.Now()
	publishAll(b, func(m *message.Message) error { return be.Publisher().Publish(topic, m) })
	waitCount(b, &handled)
	b.StopTimer()
	return float64(b.N) / time.Since(start).Seconds()
}

func benchBus(b *testing.B, driver, dsn string) float64 {
	bs, err := bus.New(context.Background(), bus.Config{
		Backend:         "sql",
		BackendSettings: settings(driver, dsn),
		Store:           bus.StoreConfig{Driver: "sqlite", DSN: "file:" + filepath.Join(b.TempDir(), "events.db")},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer bs.Close()
	topic := fmt.Sprintf("bench.bus.%s", isolatedName())
	var handled atomic.Int64
	if err := bs.Handle("bench", topic, func(ctx context.Context, msg *message.Message) error {
		handled.Add(1)
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	go func() { _ = bs.Run(context.Background()) }()
	<-bs.Running()
	b.StartTimer()
	start := time.Now()
	publishAll(b, func(m *message.Message) error { return bs.Publish(context.Background(), topic, m) })
	waitCount(b, &handled)
	b.StopTimer()
	return float64(b.N) / time.Since(start).Seconds()
}
