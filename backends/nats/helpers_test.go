package nats

import (
	"context"
	"testing"
	"time"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/internal/testenv"
	"github.com/go-eventbus/eventbus/internal/testenv/natstest"
)

// serverURL is the shared NATS server of the tests: EVENTBUS_TEST_NATS_DSN or the
// local default.
func serverURL() string { return testenv.DSN("nats", DefaultURL) }

// serverSettings returns settings for the shared server with a stream prefix unique
// to t, and deletes the streams with that prefix when t ends.
func serverSettings(t testing.TB) map[string]any {
	t.Helper()
	return natstest.Settings(t, "ebtest")
}

// embeddedSettings returns settings for an embedded server storing in a directory of t.
func embeddedSettings(t testing.TB) map[string]any {
	return map[string]any{"embedded": true, "store_dir": t.TempDir()}
}

// openBackend builds a backend through the registry, as a bus does, and closes it
// when t ends.
func openBackend(t testing.TB, settings map[string]any) *Backend {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := bus.OpenBackend(ctx, "nats", settings, bus.BackendOptions{})
	if err != nil {
		t.Fatalf("open nats backend: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b.(*Backend)
}

// with returns a copy of settings with more keys.
func with(settings map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(settings)+len(kv)/2)
	for k, v := range settings {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}
