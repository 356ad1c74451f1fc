package bus_test

import (
	"testing"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/bustest"
)

func TestConformanceMemory(t *testing.T) {
	bustest.Run(t, bustest.Options{
		Config: func(t testing.TB) bus.Config { return bus.Config{Backend: "memory"} },
	})
}
