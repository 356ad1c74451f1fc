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

// TestConsoleHealthRoutes: serve's /healthz and /readyz answer at the root without the
// console's authentication, which still guards /events/.
func TestConsoleHealthRoutes(t *testing.T) {
	store, err := modelevent.Open(context.Background(), "sqlite", "file:"+filepath.Join(t.TempDir(), "e.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	insp := control.NewInspector(store, control.NewStore(store), control.InspectorOptions{})
	url, stop, err := startConsole(context.Background(), insp, "127.0.0.1:0",
		admin.Options{Authorize: admin.BasicAuth("ops", "pw")}, io.Discard, healthRoutes(bus.StoreHealthHandler(store))...)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = stop(ctx)
	}()
	root := strings.TrimSuffix(url, "/events/")
	for path, want := range map[string]string{
		"/healthz": `{"status":"ok","checks":{}}`,
		"/readyz":  `{"status":"ok","checks":{"store":"ok"}}`,
	} {
		res, err := http.Get(root + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || strings.TrimSpace(string(body)) != want {
			t.Fatalf("GET %s = %d %s, want 200 %s", path, res.StatusCode, body, want)
		}
	}
	res, err := http.Get(url + "api/stats")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /events/api/stats without credentials = %d, want 401", res.StatusCode)
	}
}
