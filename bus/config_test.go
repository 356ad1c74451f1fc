package bus_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/middleware"
)

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfigYAMLAndEnv(t *testing.T) {
	p := writeFile(t, "eventbus.yaml", `
backend: memory
backend_settings:
  output_buffer: 4
store: {driver: sqlite, dsn: "file:x.db"}
retry: {max_retries: 3, initial_interval: 50ms, max_interval: 2s, multiplier: 3}
poison_topic: dead.letters
record: {mode: buffered, batch_size: 64, flush_interval: 2ms}
`)
	cfg, err := bus.LoadConfigEnv(p, []string{
		"EVENTBUS_STORE_DSN=file:y.db",
		"EVENTBUS_RETRY_MAX_RETRIES=7",
		"EVENTBUS_BACKEND_SETTINGS_OUTPUT_BUFFER=8",
		"EVENTBUS_REQUIRE_SERVICES=1",
		"PATH=/bin",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := middleware.RetryConfig{MaxRetries: 7, InitialInterval: 50 * time.Millisecond, MaxInterval: 2 * time.Second, Multiplier: 3}
	if cfg.Retry != want || cfg.Store.DSN != "file:y.db" || cfg.PoisonTopic != "dead.letters" ||
		cfg.Record.Mode != middleware.RecordBuffered || cfg.Record.BatchSize != 64 || cfg.Record.FlushInterval != 2*time.Millisecond {
		t.Fatalf("config = %+v", cfg)
	}
	if cfg.BackendSettings["output_buffer"] != 8 {
		t.Fatalf("backend_settings = %#v", cfg.BackendSettings)
	}
}

func TestLoadConfigJSON(t *testing.T) {
	p := writeFile(t, "eventbus.json", `{"backend": "memory", "retry": {"max_retries": 2}, "handler_timeout": "1s"}`)
	cfg, err := bus.LoadConfigEnv(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Retry.MaxRetries != 2 || cfg.HandlerTimeout != time.Second {
		t.Fatalf("config = %+v", cfg)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	cases := []struct {
		name, file string
		env        []string
		want       string
	}{
		{"unknown key", "retry: {max_retry: 3}", nil, "retry.max_retry: unknown key (accepted: initial_interval, inline_retries, jitter, max_interval, max_retries, mode, multiplier)"},
		{"unknown top-level key", "backnd: kafka", nil, "backnd: unknown key (accepted: backend, backend_settings,"},
		{"wrong type", "retry: {max_retries: many}", nil, `retry.max_retries: want a whole number, got the string "many"`},
		{"bad duration", "retry: {initial_interval: 100}", nil, `retry.initial_interval: want a duration such as "250ms" or "10s"`},
		{"bad duration string", "handler_timeout: soon", nil, `handler_timeout: "soon" is not a duration`},
		{"list where mapping", "store: [a, b]", nil, "store: want a mapping of keys, got a list"},
		{"unknown env", "", []string{"EVENTBUS_STORE_DSNN=x"}, "unknown environment variable EVENTBUS_STORE_DSNN (accepted: EVENTBUS_BACKEND,"},
		{"bad env value", "", []string{"EVENTBUS_RETRY_MAX_RETRIES=lots"}, `retry.max_retries: want a whole number, got the string "lots"`},
		{"invalid yaml", "backend: [", nil, "invalid YAML"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := ""
			if c.file != "" {
				path = writeFile(t, "c.yaml", c.file)
			}
			_, err := bus.LoadConfigEnv(path, c.env)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, c.want)
			}
		})
	}
}

func TestNewRejectsBadConfigBeforeConnecting(t *testing.T) {
	cases := []struct {
		cfg  bus.Config
		want string
	}{
		{bus.Config{Backend: "kafka2"}, `backend: unknown backend "kafka2" (forgotten import of github.com/go-eventbus/eventbus/backends/kafka2?); registered: `},
		{bus.Config{Store: bus.StoreConfig{Driver: "oracle"}}, `store.driver: unknown driver "oracle" (accepted: sqlite, postgres, mysql)`},
		{bus.Config{Store: bus.StoreConfig{Driver: "postgres"}}, `store.dsn: must be set for driver "postgres"`},
		{bus.Config{Record: bus.RecordConfig{Mode: "eventually"}}, `record.mode: "eventually" is not a record mode (accepted: durable, buffered)`},
		{bus.Config{Retry: middleware.RetryConfig{Multiplier: 0.5}}, "retry.multiplier: must be ≥ 1"},
		{bus.Config{BackendSettings: map[string]any{"brokers": "x"}, Store: bus.StoreConfig{DSN: "file:" + filepath.Join(os.TempDir(), "eventbus-config-test.db")}}, "backend memory: backend_settings.brokers: unknown key (accepted: max_backlog, max_in_flight, output_buffer)"},
		{bus.Config{BackendSettings: map[string]any{"max_backlog": -2}, Store: bus.StoreConfig{DSN: "file:" + filepath.Join(os.TempDir(), "eventbus-config-test.db")}}, "backend memory: backend_settings.max_backlog: must be -1 (no bound), 0 (the default, 1024) or more, got -2"},
	}
	for _, c := range cases {
		_, err := bus.New(context.Background(), c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v): err = %v\nwant it to contain %q", c.cfg, err, c.want)
		}
	}
	os.Remove(filepath.Join(os.TempDir(), "eventbus-config-test.db"))
}

func TestNewUnreachableStore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := bus.New(ctx, bus.Config{Store: bus.StoreConfig{Driver: "postgres", DSN: "postgres://eventbus:secret@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"}})
	if err == nil || !strings.Contains(err.Error(), "store:") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("err = %v; want a store error without the password", err)
	}
}

func TestRegisterPanics(t *testing.T) {
	for _, c := range []struct {
		name string
		f    bus.BackendFactory
	}{{"", func(context.Context, map[string]any, bus.BackendOptions) (bus.Backend, error) { return nil, nil }}, {"x-nil", nil}, {"memory", func(context.Context, map[string]any, bus.BackendOptions) (bus.Backend, error) { return nil, nil }}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Register(%q) did not panic", c.name)
				}
			}()
			bus.Register(c.name, c.f)
		}()
	}
	if got := bus.Backends(); len(got) == 0 || got[0] == "" {
		t.Fatalf("Backends() = %v", got)
	}
}

// TestEnvErrorsNameTheVariable: a bad value from an EVENTBUS_* variable is blamed on the
// variable, not on the config file, both when it cannot be decoded and when it is not
// a valid value.
func TestEnvErrorsNameTheVariable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "eventbus.yaml")
	if err := os.WriteFile(file, []byte("record: {mode: durable}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for env, want := range map[string]string{
		"EVENTBUS_RETRY_MAX_RETRIES=many": "environment variable EVENTBUS_RETRY_MAX_RETRIES: retry.max_retries:",
		"EVENTBUS_RECORD_MODE=lazy":       "environment variable EVENTBUS_RECORD_MODE: record.mode:",
		"EVENTBUS_SHUTDOWN_TIMEOUT=soon":  "environment variable EVENTBUS_SHUTDOWN_TIMEOUT: shutdown_timeout:",
	} {
		_, err := bus.LoadConfigEnv(file, []string{env})
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), file) {
			t.Errorf("%s: err = %v, want it to name the variable (%q) and not the file", env, err, want)
		}
	}
	// A bad value in the file is still the file's.
	if err := os.WriteFile(file, []byte("retry: {max_retries: many}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.LoadConfigEnv(file, []string{"EVENTBUS_RECORD_MODE=buffered"}); err == nil ||
		!strings.Contains(err.Error(), file) || strings.Contains(err.Error(), "environment variable") {
		t.Fatalf("a bad value in the file: err = %v, want it to name the file", err)
	}
}

// TestRetryKeysDefaultEach: in a file, max_retries 0 means no retries, and a retry
// section without max_retries keeps the default five.
func TestRetryKeysDefaultEach(t *testing.T) {
	dir := t.TempDir()
	for yaml, want := range map[string]int{
		"retry: {max_retries: 0}\n":              0,
		"retry: {initial_interval: 1s}\n":        middleware.DefaultRetry.MaxRetries,
		"retry: {max_retries: 2}\n":              2,
		"poison_topic: p\n":                      middleware.DefaultRetry.MaxRetries,
		"retry: {max_retries: 0, jitter: 0.5}\n": 0,
	} {
		file := filepath.Join(dir, "eventbus.yaml")
		if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := bus.LoadConfigEnv(file, nil)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Store = bus.StoreConfig{Driver: "sqlite", DSN: "file:" + filepath.Join(dir, "e.db")}
		b, err := bus.New(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		got := b.Config().Retry
		_ = b.Close()
		if got.MaxRetries != want || got.InitialInterval <= 0 && want > 0 {
			t.Errorf("%q: max_retries %d (initial %v), want %d", yaml, got.MaxRetries, got.InitialInterval, want)
		}
	}
	// EVENTBUS_RETRY_MAX_RETRIES=0 says no retries too.
	cfg, err := bus.LoadConfigEnv("", []string{"EVENTBUS_RETRY_MAX_RETRIES=0"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Retry.MaxRetries >= 1 {
		t.Fatalf("EVENTBUS_RETRY_MAX_RETRIES=0: max_retries %d", cfg.Retry.MaxRetries)
	}
}

// TestOutboxSectionReadsOutboxConfigKeys: the keys of outbox.Config, embedded in
// OutboxConfig, are keys of the outbox section, in the file and from EVENTBUS_OUTBOX_*.
func TestOutboxSectionReadsOutboxConfigKeys(t *testing.T) {
	p := writeFile(t, "eventbus.yaml", `
outbox: {enabled: true, record: relay, table: app_outbox, poll_interval: 20ms}
`)
	cfg, err := bus.LoadConfigEnv(p, []string{"EVENTBUS_OUTBOX_BATCH_SIZE=7"})
	if err != nil {
		t.Fatal(err)
	}
	o := cfg.Outbox
	if !o.Enabled || o.Record != bus.OutboxRecordRelay || o.Table != "app_outbox" || o.PollInterval != 20*time.Millisecond || o.BatchSize != 7 {
		t.Fatalf("outbox = %+v", o)
	}
	p = writeFile(t, "bad.yaml", "outbox: {tabel: x}\n")
	if _, err := bus.LoadConfig(p); err == nil || !strings.Contains(err.Error(), "outbox.tabel: unknown key") || !strings.Contains(err.Error(), "poll_interval") {
		t.Fatalf("unknown outbox key: %v", err)
	}
}
