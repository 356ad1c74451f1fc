package sqlbackend_test

import (
	"testing"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/bustest"
)

// TestConformance runs the bus conformance suite on each database, with the ModelEvent
// store in the same database (and schema) as the backend's tables: the combination of
// bus.Config.Store and backend_settings naming the same driver and DSN.
func TestConformance(t *testing.T) {
	for _, tg := range targets {
		t.Run(tg.driver, func(t *testing.T) {
			t.Parallel()
			dsn := tg.dsn(t)
			bustest.Run(t, bustest.Options{
				Config: func(t testing.TB) bus.Config {
					return bus.Config{
						Backend:         "sql",
						BackendSettings: settings(tg.driver, dsn),
						Store:           bus.StoreConfig{Driver: tg.driver, DSN: dsn},
					}
				},
			})
		})
	}
}
