package amqp

import (
	"testing"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/bustest"
)

// BenchmarkBusAmqp runs bustest.BenchmarkBackend (raw Watermill, then the bus with
// durable and with buffered recording, bustest.BenchPublishers goroutines publishing)
// at the backend's default settings on the test broker. Run with -benchtime 3000x.
func BenchmarkBusAmqp(b *testing.B) {
	bustest.BenchmarkBackend(b, bustest.BenchOptions{
		Config: func(b *testing.B) bus.Config {
			return bus.Config{Backend: Name, BackendSettings: map[string]any{"url": brokerURL(b)}}
		},
		Topic: func(run string) string { return testTopic("bench-" + run) },
	})
}
