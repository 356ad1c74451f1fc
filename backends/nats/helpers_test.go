package nats

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	natsgo "github.com/nats-io/nats.go"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/internal/testenv"
)

// serverURL is the shared NATS server of the tests: EVENTBUS_TEST_NATS_DSN or the
// local default.
func serverURL() string { return testenv.DSN("nats", DefaultURL) }

// requireServer skips (or, with EVENTBUS_REQUIRE_SERVICES=1, fails) t unless the
// shared server answers with JetStream enabled.
func requireServer(t testing.TB) string {
	t.Helper()
	url := serverURL()
	nc, err := natsgo.Connect(url, natsgo.Timeout(2*time.Second), natsgo.MaxReconnects(0))
	if err == nil {
		defer nc.Close()
		var js natsgo.JetStreamContext
		if js, err = nc.JetStream(); err == nil {
			_, err = js.AccountInfo(natsgo.MaxWait(2 * time.Second))
		}
	}
	testenv.RequireService(t, "nats", err)
	return url
}

// serverSettings returns settings for the shared server with a stream prefix unique
// to t, and deletes the streams with that prefix when t ends.
func serverSettings(t testing.TB) map[string]any {
	t.Helper()
	url := requireServer(t)
	prefix := "ebtest_" + strings.ReplaceAll(watermill.NewShortUUID(), "-", "") + "_"
	t.Cleanup(func() { deleteStreams(t, url, prefix) })
	return map[string]any{"url": url, "stream_prefix": prefix}
}

// deleteStreams deletes every stream of the shared server whose name starts with prefix.
func deleteStreams(t testing.TB, url, prefix string) {
	nc, err := natsgo.Connect(url, natsgo.Timeout(2*time.Second), natsgo.MaxReconnects(0))
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	defer nc.Close()
	js, err := nc.JetStream()
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for name := range js.StreamNames(natsgo.Context(ctx)) {
		if strings.HasPrefix(name, prefix) {
			if err := js.DeleteStream(name); err != nil {
				t.Logf("cleanup: delete stream %s: %v", name, err)
			}
		}
	}
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
