package amqp

import (
	"testing"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/bustest"
)

func TestConformance(t *testing.T) {
	url := brokerURL(t)
	bustest.Run(t, bustest.Options{
		Config: func(t testing.TB) bus.Config {
			return bus.Config{Backend: Name, BackendSettings: map[string]any{
				"url":       url,
				"reconnect": map[string]any{"initial_interval": "100ms", "max_interval": "1s"},
			}}
		},
	})
}

// TestConformanceConcurrent runs the suite with several AMQP consumers per
// subscription.
func TestConformanceConcurrent(t *testing.T) {
	url := brokerURL(t)
	bustest.Run(t, bustest.Options{
		Config: func(t testing.TB) bus.Config {
			return bus.Config{Backend: Name, BackendSettings: map[string]any{"url": url, "concurrency": 4}}
		},
	})
}

// The durable_queue topology is not run through bustest: its consumers of a topic share
// one queue, so the suite's cases with two consumers each receiving every message do not
// apply. TestDurableQueueSharesMessages covers it.
