package tracing_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/bustest"
	"github.com/go-eventbus/eventbus/middleware"
	"github.com/go-eventbus/eventbus/tracing"
)

// discardExporter drops every span batch: the SDK does all its work (ids, attributes,
// the batch processor's queue) but nothing is sent.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// BenchmarkTracing measures Publish to handled on the memory backend with a store that
// writes nothing (durable mode), 16 publishing goroutines: tracing off (nil
// TracerProvider), on with the no-op provider, and on with the SDK (always sampled, a
// batch span processor and an exporter that discards). Each event is one publish span
// and one process span. Compare events/s and cpu-µs/event of the three.
func BenchmarkTracing(b *testing.B) {
	for _, tc := range []struct {
		name string
		tp   func(b *testing.B) trace.TracerProvider
	}{
		{"off", func(*testing.B) trace.TracerProvider { return nil }},
		{"noop", func(*testing.B) trace.TracerProvider { return noop.NewTracerProvider() }},
		{"sdk", func(b *testing.B) trace.TracerProvider {
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discardExporter{}), sdktrace.WithSampler(sdktrace.AlwaysSample()))
			b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			return tp
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.StopTimer()
			bb, err := bus.New(context.Background(), bus.Config{EventStore: bustest.NopStore{}, TracerProvider: tc.tp(b),
				Record: bus.RecordConfig{Mode: middleware.RecordDurable}})
			if err != nil {
				b.Fatal(err)
			}
			defer bb.Close()
			var handled atomic.Int64
			if err := bb.Handle("bench", "bench", func(context.Context, *message.Message) error { handled.Add(1); return nil }); err != nil {
				b.Fatal(err)
			}
			go func() { _ = bb.Run(context.Background()) }()
			<-bb.Running()
			payload := []byte(`{"id":12345,"customer":"ada","total":99.95,"items":[{"sku":"A-1","qty":2}]}`)
			ctx := context.Background()
			b.StartTimer()
			cpu0, start := cpuSeconds(), time.Now()
			var next atomic.Int64
			var wg sync.WaitGroup
			for p := 0; p < 16; p++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						if err := bb.Publish(ctx, "bench", bus.NewMessage(payload)); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			for deadline := time.Now().Add(5 * time.Minute); handled.Load() < int64(b.N); time.Sleep(100 * time.Microsecond) {
				if time.Now().After(deadline) {
					b.Fatalf("handled %d of %d", handled.Load(), b.N)
				}
			}
			if err := bb.Close(); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
			b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N)*1e6, "cpu-µs/event")
		})
	}
}

// BenchmarkTracingLayer is the tracing code alone, per event: a publish span around a
// publish that does nothing (injecting the context into the message), then a process
// span around a handler that does nothing (extracting it), one goroutine. With tracing
// off the bus runs none of it (nil checks only), so this is what tracing adds to the
// CPU time of an event; compare with BenchmarkTracing/off's cpu-µs/event.
func BenchmarkTracingLayer(b *testing.B) {
	for _, tc := range []struct {
		name string
		tp   func(b *testing.B) trace.TracerProvider
	}{
		{"noop", func(*testing.B) trace.TracerProvider { return noop.NewTracerProvider() }},
		{"sdk", func(b *testing.B) trace.TracerProvider {
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discardExporter{}), sdktrace.WithSampler(sdktrace.AlwaysSample()))
			b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			return tp
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			tr := tracing.New(tc.tp(b), "memory")
			handle := tr.Consumer("bench", "bench")(func(*message.Message) ([]*message.Message, error) { return nil, nil })
			ctx := context.Background()
			msgs := make([]*message.Message, 1)
			b.ReportAllocs()
			b.ResetTimer()
			msg := message.NewMessage("0a1b2c3d-0000-4000-8000-000000000000", nil)
			msgs[0] = msg
			for i := 0; i < b.N; i++ {
				delete(msg.Metadata, tracing.TraceparentKey)
				tracing.End(tr.StartPublish(ctx, "bench", msgs), nil)
				if _, err := handle(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
