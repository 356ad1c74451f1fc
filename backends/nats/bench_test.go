package nats

import (
	"testing"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/bustest"
)

// BenchmarkBusNATS runs bustest.BenchmarkBackend (raw Watermill, then the bus with
// durable and with buffered recording, bustest.BenchPublishers goroutines publishing)
// at the backend's default settings, in sub-benchmarks for the shared server (skipped
// when unreachable) and the embedded one. Run with -benchtime 3000x.
func BenchmarkBusNATS(b *testing.B) {
	targets := []struct {
		name     string
		settings func(b *testing.B) map[string]any
	}{
		{"server", func(b *testing.B) map[string]any { return serverSettings(b) }},
		{"embedded", func(b *testing.B) map[string]any { return embeddedSettings(b) }},
	}
	for _, tg := range targets {
		b.Run(tg.name, func(b *testing.B) {
			bustest.BenchmarkBackend(b, bustest.BenchOptions{
				Config: func(b *testing.B) bus.Config {
					return bus.Config{Backend: "nats", BackendSettings: tg.settings(b)}
				},
				InitializeRaw: true, // the plain subscriber does not provision the stream
			})
		})
	}
}
