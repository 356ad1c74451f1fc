package nats

import (
	"testing"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/bustest"
)

func TestConformanceEmbedded(t *testing.T) {
	bustest.Run(t, bustest.Options{
		Config: func(t testing.TB) bus.Config {
			return bus.Config{Backend: "nats", BackendSettings: embeddedSettings(t)}
		},
	})
}

func TestConformanceServer(t *testing.T) {
	settings := serverSettings(t)
	bustest.Run(t, bustest.Options{
		Config: func(t testing.TB) bus.Config {
			return bus.Config{Backend: "nats", BackendSettings: settings}
		},
	})
}
