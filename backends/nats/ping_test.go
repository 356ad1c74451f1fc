package nats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/internal/tcpproxy"
	"github.com/go-eventbus/eventbus/internal/testenv"
)

// TestPing: Ping answers on the shared server, with a subscriber's connection open,
// and returns ErrClosed after Close.
func TestPing(t *testing.T) {
	b := openBackend(t, serverSettings(t))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	sub, err := b.Subscriber("pinged")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if err := b.Ping(ctx); err != nil {
		t.Fatalf("Ping with a subscriber: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Ping(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ping after Close = %v, want ErrClosed", err)
	}
}

// TestHealthBackendDown: a bus on NATS through a TCP proxy is not ready, naming the
// backend, while the proxy cuts the connections, and is ready again after the restore;
// the outage is logged once when it starts and once, with its duration, when it ends.
func TestHealthBackendDown(t *testing.T) {
	settings := serverSettings(t)
	u, err := url.Parse(settings["url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := tcpproxy.Start(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	u.Host = proxy.Addr()
	logs := &testenv.Logs{}
	b, err := bus.New(context.Background(), bus.Config{
		Backend:         "nats",
		BackendSettings: with(settings, "url", u.String(), "reconnect_wait", "100ms"),
		Store:           bus.StoreConfig{Driver: "sqlite", DSN: "file:" + filepath.Join(t.TempDir(), "events.db")},
		ShutdownTimeout: 3 * time.Second,
		Process:         bus.ProcessConfig{HeartbeatInterval: 100 * time.Millisecond},
		Logger:          logs.Logger(slog.LevelInfo),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	if err := b.Handle("billing", "health.orders", func(context.Context, *message.Message) error { return nil }); err != nil {
		t.Fatal(err)
	}
	go func() { _ = b.Run(context.Background()) }()
	select {
	case <-b.Running():
	case <-time.After(20 * time.Second):
		t.Fatal("bus did not start")
	}
	h := b.HealthHandler()
	ready := func() (int, bus.HealthReport) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		var rep bus.HealthReport
		if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
			t.Fatalf("readyz body: %v: %q", err, rec.Body.String())
		}
		return rec.Code, rep
	}
	waitReady := func(code int, what string) bus.HealthReport {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			got, rep := ready()
			if got == code {
				return rep
			}
			if time.Now().After(deadline) {
				t.Fatalf("readyz = %d %v, want %d %s", got, rep.Checks, code, what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitReady(200, "on a running bus")

	proxy.Cut()
	rep := waitReady(503, "while NATS is cut off")
	if s := rep.Checks["backend"]; !strings.HasPrefix(s, "nats: ") || !strings.Contains(s, "disconnected") {
		t.Fatalf("backend check %q does not say nats is disconnected (%v)", s, rep.Checks)
	}
	if rep.Checks["store"] != "ok" || rep.Checks["bus"] != "ok" {
		t.Fatalf("checks %v: only the backend should fail", rep.Checks)
	}
	proxy.Restore()
	rep = waitReady(200, "after the restore")
	if fmt.Sprint(rep.Checks) != "map[backend:ok bus:ok consumers:ok store:ok]" {
		t.Fatalf("checks after the restore: %v", rep.Checks)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(logs.Records(t, "eventbus: broker (nats) available again")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the end of the outage was not logged:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	down, up := logs.Records(t, "eventbus: broker (nats) unavailable"), logs.Records(t, "eventbus: broker (nats) available again")
	if len(down) != 1 || down[0][slog.LevelKey] != "WARN" || len(up) != 1 || up[0]["outage"] == nil {
		t.Fatalf("the outage's logs: %d at its start (want 1, at WARN), %d at its end (want 1, with its duration):\n%s", len(down), len(up), logs.String())
	}
}
