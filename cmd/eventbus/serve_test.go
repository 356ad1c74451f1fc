package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-eventbus/eventbus/admin"
	"github.com/go-eventbus/eventbus/control"
)

func TestServeRefusesOpenAddressWithoutAuth(t *testing.T) {
	t.Setenv(adminUserEnv, "")
	t.Setenv(adminPasswordEnv, "")
	err := runServe(context.Background(), []string{"--addr", "0.0.0.0:0"}, io.Discard, io.Discard)
	var u usageError
	if !errors.As(err, &u) || !strings.Contains(err.Error(), "without authentication") {
		t.Fatalf("err = %v", err)
	}
	t.Setenv(adminUserEnv, "ops")
	if err := runServe(context.Background(), []string{"--addr", "127.0.0.1:0"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "set both") {
		t.Fatalf("half credentials: %v", err)
	}
}

func TestStartConsole(t *testing.T) {
	cfgPath := filepath.Join(t.TempDir(), "eventbus.yaml")
	if err := os.WriteFile(cfgPath, []byte("store:\n  driver: sqlite\n  dsn: file:"+filepath.Join(t.TempDir(), "e.db")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	store, err := openStore(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	insp := control.NewInspector(store, control.NewStore(store), control.InspectorOptions{})
	var stderr bytes.Buffer
	url, stop, err := startConsole(context.Background(), insp, "127.0.0.1:0", admin.Options{Authorize: admin.BasicAuth("ops", "pw")}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := stop(ctx); err != nil {
			t.Fatal(err)
		}
	}()
	req, _ := http.NewRequest("GET", url+"api/stats", nil)
	req.SetBasicAuth("ops", "pw")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || !strings.HasSuffix(url, "/events/") {
		t.Fatalf("%s: %d", url, res.StatusCode)
	}
}
