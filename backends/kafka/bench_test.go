package kafka_test

import (
	"testing"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/bustest"
)

// BenchmarkBusKafka runs bustest.BenchmarkBackend (raw Watermill, then the bus with
// durable and with buffered recording, bustest.BenchPublishers goroutines publishing)
// at the backend's default settings on an in-process kfake broker, whose topics the
// backend creates with the default partitions (16, one message in flight per
// partition). Run with -benchtime 3000x.
func BenchmarkBusKafka(b *testing.B) {
	bustest.BenchmarkBackend(b, bustest.BenchOptions{
		Config: func(b *testing.B) bus.Config {
			return bus.Config{Backend: "kafka", BackendSettings: map[string]any{"broker_hosts": startKafka(b)}}
		},
	})
}
