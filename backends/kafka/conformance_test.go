package kafka_test

import (
	"testing"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/bustest"
)

func TestConformance(t *testing.T) {
	hosts := startKafka(t)
	bustest.Run(t, bustest.Options{
		Config: func(t testing.TB) bus.Config {
			return bus.Config{Backend: "kafka", BackendSettings: settings(hosts)}
		},
	})
}
