package main

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-eventbus/eventbus/admin"
	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/control"
	"github.com/go-eventbus/eventbus/modelevent"
)

// TestConsoleMetrics: demo serves the bus's metrics and serve the heartbeat ages of
// the control plane at /metrics, without the console's authentication.
func TestConsoleMetrics(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dsn := "file:" + filepath.Join(t.TempDir(), "e.db")
	b, err := bus.New(ctx, bus.Config{Store: bus.StoreConfig{DSN: dsn}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	store, err := modelevent.Open(ctx, "sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctl := control.NewStore(store)
	if err := ctl.Heartbeat(ctx, control.Process{ID: "p1", Name: "worker-1", HeartbeatInterval: time.Second}); err != nil {
		t.Fatal(err)
	}
	served, err := controlMetricsRoute(ctx, ctl, 20*time.Millisecond, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	opts := admin.Options{Authorize: admin.BasicAuth("ops", "pw")}
	for name, r := range map[string]struct {
		route route
		want  string
	}{
		"demo":  {metricsRoute(b), "eventbus_recorder_queue_capacity 4096"},
		"serve": {served, `eventbus_process_heartbeat_age_seconds{name="worker-1",process="p1"}`},
	} {
		url, stop, err := startConsole(ctx, b.Inspector(), "127.0.0.1:0", opts, io.Discard, r.route)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = stop(context.Background()) }()
		deadline := time.Now().Add(10 * time.Second)
		for {
			res, err := http.Get(strings.TrimSuffix(url, "/events/") + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == 200 && strings.Contains(string(body), r.want) && strings.Contains(string(body), "go_goroutines") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: GET /metrics = %d, want %s in\n%s", name, res.StatusCode, r.want, body)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
