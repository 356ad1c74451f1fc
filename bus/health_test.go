package bus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/modelevent"
)

// probe GETs path from h and decodes the report.
func probe(t *testing.T, h http.Handler, path string) (int, bus.HealthReport) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	var rep bus.HealthReport
	if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
		t.Fatalf("GET %s: body is not a report: %v: %q", path, err, rec.Body.String())
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("GET %s: Content-Type %q", path, ct)
	}
	if ok := rec.Code == http.StatusOK; ok != rep.OK() {
		t.Fatalf("GET %s: code %d with status %q", path, rec.Code, rep.Status)
	}
	return rec.Code, rep
}

// wantReport fails t unless path answers code with exactly the checks want.
func wantReport(t *testing.T, h http.Handler, path string, code int, want map[string]string) {
	t.Helper()
	got, rep := probe(t, h, path)
	if got != code || fmt.Sprint(rep.Checks) != fmt.Sprint(want) {
		t.Fatalf("GET %s = %d %v, want %d %v", path, got, rep.Checks, code, want)
	}
}

// TestHealthHandlerMemory: on the memory backend and SQLite, readiness waits for Run
// to subscribe the consumers, ignores a consumer stopped on purpose, and both
// endpoints fail once the bus is closed; the handler answers wherever it is mounted.
func TestHealthHandlerMemory(t *testing.T) {
	b := newTestBus(t, bus.Config{})
	for _, name := range []string{"billing", "shipping"} {
		if err := b.Handle(name, "health.orders", func(context.Context, *message.Message) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	h := b.HealthHandler()
	ok := map[string]string{"backend": "ok", "bus": "ok", "consumers": "ok", "store": "ok"}

	wantReport(t, h, "/healthz", 200, map[string]string{"bus": "ok"})
	wantReport(t, h, "/readyz", 503, map[string]string{"backend": "ok", "bus": "ok",
		"consumers": "billing: pending, shipping: pending", "store": "ok"})

	runBus(t, b)
	wantReport(t, h, "/readyz", 200, ok)

	// Mounted elsewhere: under a prefix, stripped or not, and one route per path.
	mux := http.NewServeMux()
	mux.Handle("/ops/", http.StripPrefix("/ops", h))
	mux.Handle("/internal/health/", h)
	mux.Handle("GET /readyz", h)
	for _, p := range []string{"/ops/readyz", "/internal/health/readyz", "/readyz"} {
		wantReport(t, mux, p, 200, ok)
	}
	wantReport(t, mux, "/ops/healthz", 200, map[string]string{"bus": "ok"})
	for path, code := range map[string]int{"/ops/metrics": 404, "/ops/": 404} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != code {
			t.Fatalf("GET %s = %d, want %d", path, rec.Code, code)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/readyz", nil))
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST /readyz = %d Allow %q", rec.Code, rec.Header().Get("Allow"))
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodHead, "/readyz", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("HEAD /readyz = %d", rec.Code)
	}

	// A consumer stopped by its desired state is fine.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.StopConsumer(ctx, "shipping"); err != nil {
		t.Fatal(err)
	}
	wantReport(t, h, "/readyz", 200, ok)

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	wantReport(t, h, "/healthz", 503, map[string]string{"bus": "closed"})
	wantReport(t, h, "/readyz", 503, map[string]string{"backend": "not checked", "bus": "closed",
		"consumers": "not checked", "store": "not checked"})
}

// TestHealthStoreCut: readiness fails naming the store while PostgreSQL is cut off
// (through a TCP proxy), liveness does not, and readiness comes back after the restore.
func TestHealthStoreCut(t *testing.T) {
	dsn, proxy := proxiedPostgres(t)
	b := newTestBus(t, bus.Config{Store: bus.StoreConfig{Driver: "postgres", DSN: dsn}, ShutdownTimeout: 3 * time.Second})
	if err := b.Handle("billing", "health.cut", func(context.Context, *message.Message) error { return nil }); err != nil {
		t.Fatal(err)
	}
	runBus(t, b)
	h := b.HealthHandler()
	wantReport(t, h, "/readyz", 200, map[string]string{"backend": "ok", "bus": "ok", "consumers": "ok", "store": "ok"})

	proxy.Cut()
	var last bus.HealthReport
	waitFor(t, 10*time.Second, func() (bool, string) {
		var code int
		code, last = probe(t, h, "/readyz")
		return code == 503, fmt.Sprintf("readyz still %d %v", code, last.Checks)
	})
	if s := last.Checks["store"]; !strings.HasPrefix(s, "ping: postgres: ") {
		t.Fatalf("store check %q does not name the store's ping", s)
	}
	for _, k := range []string{"backend", "bus", "consumers"} {
		if last.Checks[k] != "ok" {
			t.Fatalf("check %s = %q while only the store is cut: %v", k, last.Checks[k], last.Checks)
		}
	}
	wantReport(t, h, "/healthz", 200, map[string]string{"bus": "ok"})

	proxy.Restore()
	waitFor(t, 10*time.Second, func() (bool, string) {
		code, rep := probe(t, h, "/readyz")
		return code == 200, fmt.Sprintf("readyz still %d %v after the restore", code, rep.Checks)
	})
}

// TestStoreHealthHandler: without a bus, readiness is the store's ping.
func TestStoreHealthHandler(t *testing.T) {
	ctx := context.Background()
	store, err := modelevent.Open(ctx, "sqlite", "file:"+filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	h := bus.StoreHealthHandler(store)
	wantReport(t, h, "/healthz", 200, map[string]string{})
	wantReport(t, h, "/readyz", 200, map[string]string{"store": "ok"})
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	_, rep := probe(t, h, "/readyz")
	if rep.OK() || !strings.HasPrefix(rep.Checks["store"], "ping: sqlite: ") {
		t.Fatalf("readyz of a closed store = %v", rep)
	}
}
