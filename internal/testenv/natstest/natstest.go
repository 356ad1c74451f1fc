// Package natstest gives tests the shared NATS JetStream server (EVENTBUS_TEST_NATS_DSN,
// default nats://127.0.0.1:4222) with streams of their own, deleted when they end.
package natstest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	natsgo "github.com/nats-io/nats.go"

	"github.com/go-eventbus/eventbus/internal/testenv"
)

// URL returns the shared server's URL. It skips t loudly (fails it under
// EVENTBUS_REQUIRE_SERVICES=1) unless the server answers with JetStream enabled.
func URL(t testing.TB) string {
	t.Helper()
	url := testenv.DSN("nats", "nats://127.0.0.1:4222")
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

// Settings returns nats backend settings for the shared server with a stream prefix
// unique to t (starting with base), and deletes the streams with that prefix when t
// ends.
func Settings(t testing.TB, base string) map[string]any {
	t.Helper()
	url := URL(t)
	prefix := base + "_" + strings.ReplaceAll(watermill.NewShortUUID(), "-", "") + "_"
	t.Cleanup(func() { DeleteStreams(t, url, prefix) })
	return map[string]any{"url": url, "stream_prefix": prefix}
}

// DeleteStreams deletes every stream of the server at url whose name starts with prefix.
func DeleteStreams(t testing.TB, url, prefix string) {
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
