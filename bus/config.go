package bus

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"gopkg.in/yaml.v3"

	"github.com/go-eventbus/eventbus/internal/outboxlink"
	"github.com/go-eventbus/eventbus/middleware"
	"github.com/go-eventbus/eventbus/modelevent"
	_ "github.com/go-eventbus/eventbus/modelevent/sqlite" // the embedded default store needs no import
)

// Config configures a Bus. It mirrors django-eventbus's EVENTBUS settings dict and is what
// LoadConfig reads from a YAML or JSON file. The zero Config is the embedded default:
// the memory backend and a SQLite file named eventbus.db.
type Config struct {
	// Backend names the broker backend: memory (default), kafka, nats, amqp, sql. It must
	// have been registered, usually by a blank import of backends/<name> or backends/all.
	Backend string `yaml:"backend"`
	// BackendSettings are passed to the backend, which rejects keys it does not know.
	BackendSettings map[string]any `yaml:"backend_settings"`
	// Store says where ModelEvents live.
	Store StoreConfig `yaml:"store"`
	// Retry is the retry policy of every handler. A zero RetryConfig means
	// middleware.DefaultRetry (5 retries from 100ms, doubling, up to 10s); otherwise
	// each zero interval or multiplier takes its default, and MaxRetries is as given
	// (0 or -1: no retries). In a file or environment, every key has its own default:
	// `retry: {max_retries: 0}` means no retries, `retry: {initial_interval: 1s}` five.
	Retry middleware.RetryConfig `yaml:"retry"`
	// PoisonTopic receives messages whose handler failed after every retry.
	// Default "eventbus.poison".
	PoisonTopic string `yaml:"poison_topic"`
	// HandlerTimeout bounds one attempt of a handler; 0 means no bound.
	HandlerTimeout time.Duration `yaml:"handler_timeout"`
	// ShutdownTimeout bounds Shutdown's phases (see Bus.Shutdown). Close waits this
	// long for in-flight handlers before it cancels their contexts (Shutdown's first
	// phase, with this deadline). A tenth of it is what the cancelled handlers get to
	// return (the second phase), what the publishes still in progress get, and the
	// least the final flush gets (it has until ctx's deadline). With a ctx without a
	// deadline, Shutdown waits for the handlers as long as they run, the flush gets all
	// of ShutdownTimeout counted from when they are done, and the scheduled runs in
	// progress get it counted from Shutdown's start. Default 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// Record configures how ModelEvents are written.
	Record RecordConfig `yaml:"record"`
	// MaxPayloadBytes caps the payload Publish accepts. Default 1 MiB.
	MaxPayloadBytes int `yaml:"max_payload_bytes"`
	// Process configures this process's entry in the store's process registry.
	Process ProcessConfig `yaml:"process"`
	// Outbox configures the transactional outbox (PublishTx) and its relay.
	Outbox OutboxConfig `yaml:"outbox"`
	// Retention says how long ModelEvents are kept; off by default (see RetentionConfig).
	Retention RetentionConfig `yaml:"retention"`
	// Scheduler configures the loop that runs scheduled retries and delayed publishes
	// (scheduler.go).
	Scheduler SchedulerConfig `yaml:"scheduler"`
	// Idempotency is the consumers' default idempotency; off by default.
	Idempotency IdempotencyConfig `yaml:"idempotency"`

	// Logger receives the bus's logs (and Watermill's, through watermill.NewSlogLogger).
	// Nil discards them. Not read from files.
	Logger *slog.Logger `yaml:"-"`
	// Broker, when not nil, is used instead of building Backend from the registry; it is
	// the path without the global registry, as sql.OpenDB is. Not read from files.
	Broker Backend `yaml:"-"`
	// EventStore, when not nil, is used instead of opening Store; the bus does not close
	// it. Not read from files.
	EventStore modelevent.Store `yaml:"-"`
	// Metrics is the Prometheus registry the bus registers its metrics on (package
	// metrics, and Watermill's router, publisher and subscriber metrics), all named
	// eventbus_*. Nil: the bus's own metrics on a registry of its own, with the Go and
	// process collectors, never the global one; Watermill's per-message metrics (a
	// few µs of CPU per event) only with a registry set here. Bus.MetricsHandler serves
	// it. Not read from files.
	Metrics prometheus.Registerer `yaml:"-"`
	// MetricsPollInterval is how often the consumer backlogs and the heartbeats of the
	// control plane are polled for their gauges (in the background: a scrape does no
	// I/O). Default 15s.
	MetricsPollInterval time.Duration `yaml:"metrics_poll_interval"`
	// TracerProvider, when not nil, traces the bus with OpenTelemetry (package
	// tracing): publish, create (outbox) and process spans after the messaging semantic
	// conventions, the W3C trace context in message metadata. Nil traces nothing, and
	// no tracing code runs. Not read from files.
	TracerProvider trace.TracerProvider `yaml:"-"`
}

// StoreConfig says where ModelEvents live.
type StoreConfig struct {
	// Driver is sqlite (default), postgres or mysql. postgres and mysql are linked by a
	// blank import of github.com/go-eventbus/eventbus/modelevent/postgres or
	// .../modelevent/mysql (the eventbus command links both).
	Driver string `yaml:"driver"`
	// DSN is the data source name for Driver. Default "file:eventbus.db" for sqlite.
	DSN string `yaml:"dsn"`
	// ManualMigrate, when true, keeps New from applying the store's migrations; run
	// `eventbus migrate` instead.
	ManualMigrate bool `yaml:"manual_migrate"`
}

// RecordConfig configures recording; see middleware.RecorderConfig.
type RecordConfig struct {
	// Mode is durable (default: a message is acked after its row is stored) or buffered.
	Mode middleware.RecordMode `yaml:"mode"`
	// BatchSize caps the rows written in one transaction. Default 256.
	BatchSize int `yaml:"batch_size"`
	// FlushInterval is how long buffered mode waits to fill a batch. Default 5ms.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// CommitDelay is how long durable mode waits for more rows before committing a
	// small batch: latency traded for larger group commits. Default 0.
	CommitDelay time.Duration `yaml:"commit_delay"`
	// QueueSize bounds the rows waiting to be written. Default 16 × BatchSize.
	QueueSize int `yaml:"queue_size"`
	// Writers is how many batches are written at once, each on a connection of its
	// own; a row's changes always go to the same writer. 0: the store's default (4 on
	// PostgreSQL, 1 on SQLite and MySQL), where more writers help a store a round
	// trip away.
	Writers int `yaml:"writers"`
	// ProducedMode is the mode of produced rows when it differs from Mode: with mode
	// durable and produced_mode buffered, Publish returns once the broker took the
	// messages and their rows are written in the background, while consumed messages
	// are still acked only after their rows are stored. Default: Mode.
	ProducedMode middleware.RecordMode `yaml:"produced_mode"`
	// WriteTimeout bounds every wait for the store (a durable row, room in a full
	// queue); while the store is unavailable consumed messages are nacked after it, and
	// their handlers do not run. Default 10s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
}

// ProcessConfig configures this process's part in the control plane: its entry in the
// store's process registry, its heartbeat, and the commands it runs for others.
type ProcessConfig struct {
	// Name labels the process in the console; default "<host>:<pid>".
	Name string `yaml:"name"`
	// HeartbeatInterval is how often the process reports itself and its consumers and
	// applies the consumers' desired state. Default 2s.
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`
	// CommandPollInterval is how often the process looks for commands to run. Default 500ms.
	CommandPollInterval time.Duration `yaml:"command_poll_interval"`
	// PruneAfter removes processes not seen for this long from the registry. Default 24h.
	PruneAfter time.Duration `yaml:"prune_after"`
	// Version is reported in the registry; default the module version of the binary.
	Version string `yaml:"version"`
	// Disabled keeps the process out of the control plane: not registered, no remote
	// start/stop, no commands.
	Disabled bool `yaml:"disabled"`
}

// The defaults of Config.
const (
	DefaultBackend         = "memory"
	DefaultStoreDriver     = "sqlite"
	DefaultSQLiteDSN       = "file:eventbus.db"
	DefaultPoisonTopic     = "eventbus.poison"
	DefaultShutdownTimeout = 30 * time.Second
	DefaultMaxPayloadBytes = 1 << 20
)

// storeDrivers lists the accepted values of store.driver: the store's dialects.
var storeDrivers = []string{modelevent.DialectSQLite, modelevent.DialectPostgres, modelevent.DialectMySQL}

func (c *Config) setDefaults() {
	if c.Backend == "" {
		c.Backend = DefaultBackend
	}
	if c.Store.Driver == "" {
		c.Store.Driver = DefaultStoreDriver
	}
	if c.Store.DSN == "" && c.Store.Driver == "sqlite" {
		c.Store.DSN = DefaultSQLiteDSN
	}
	if base := (middleware.RetryConfig{Mode: c.Retry.Mode, InlineRetries: c.Retry.InlineRetries}); c.Retry == base {
		c.Retry = middleware.DefaultRetry
		c.Retry.Mode, c.Retry.InlineRetries = base.Mode, base.InlineRetries
	}
	if c.Retry.MaxRetries < 0 {
		c.Retry.MaxRetries = 0
	}
	c.Retry = c.Retry.WithDefaults()
	if c.PoisonTopic == "" {
		c.PoisonTopic = DefaultPoisonTopic
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.Record.Mode == "" {
		c.Record.Mode = middleware.RecordDurable
	}
	if c.MaxPayloadBytes <= 0 {
		c.MaxPayloadBytes = DefaultMaxPayloadBytes
	}
	if c.Process.HeartbeatInterval <= 0 {
		c.Process.HeartbeatInterval = 2 * time.Second
	}
	if c.Process.CommandPollInterval <= 0 {
		c.Process.CommandPollInterval = 500 * time.Millisecond
	}
	if c.Process.PruneAfter <= 0 {
		c.Process.PruneAfter = 24 * time.Hour
	}
	if c.MetricsPollInterval <= 0 {
		c.MetricsPollInterval = DefaultMetricsPollInterval
	}
	c.Retention.setDefaults()
	c.Scheduler.setDefaults(c.HandlerTimeout)
}

// Validate reports the first configuration mistake, naming the key and the accepted
// values. It checks that the backend is registered but not its settings, which the
// backend checks when the bus is created.
func (c Config) Validate() error {
	if c.Broker == nil && c.Backend != "" {
		if _, ok := lookup(c.Backend); !ok {
			return fmt.Errorf("backend: unknown backend %q (forgotten import of github.com/go-eventbus/eventbus/backends/%s?); registered: %s",
				c.Backend, c.Backend, strings.Join(Backends(), ", "))
		}
	}
	if c.EventStore == nil && c.Store.Driver != "" && !contains(storeDrivers, c.Store.Driver) {
		return fmt.Errorf("store.driver: unknown driver %q (accepted: %s)", c.Store.Driver, strings.Join(storeDrivers, ", "))
	}
	if c.Outbox.Enabled && !outboxlink.Linked() {
		return fmt.Errorf("outbox.enabled: %w", outboxlink.ErrNotLinked)
	}
	if c.EventStore == nil && c.Store.Driver != "" && !contains(modelevent.Drivers(), c.Store.Driver) {
		return fmt.Errorf("store.driver: %q is not linked into this program: add import _ \"github.com/go-eventbus/eventbus/modelevent/%s\" (linked: %s)",
			c.Store.Driver, c.Store.Driver, strings.Join(modelevent.Drivers(), ", "))
	}
	if c.EventStore == nil && c.Store.Driver != "" && c.Store.Driver != modelevent.DialectSQLite && c.Store.DSN == "" {
		return fmt.Errorf("store.dsn: must be set for driver %q", c.Store.Driver)
	}
	if c.Retry.Multiplier < 0 {
		return fmt.Errorf("retry.multiplier: must be ≥ 1, got %v", c.Retry.Multiplier)
	}
	if c.Retry.Multiplier > 0 && c.Retry.Multiplier < 1 {
		return fmt.Errorf("retry.multiplier: must be ≥ 1, got %v", c.Retry.Multiplier)
	}
	if c.Retry.Jitter < 0 || c.Retry.Jitter > 1 {
		return fmt.Errorf("retry.jitter: must be between 0 and 1, got %v", c.Retry.Jitter)
	}
	if !c.Retry.Mode.Valid() {
		return fmt.Errorf("retry.mode: %q is not a retry mode (accepted: inline, scheduled)", c.Retry.Mode)
	}
	if c.Retry.InlineRetries < 0 {
		return fmt.Errorf("retry.inline_retries: must be ≥ 0, got %d", c.Retry.InlineRetries)
	}
	if c.Retry.MaxInterval > 0 && c.Retry.InitialInterval > c.Retry.MaxInterval {
		return fmt.Errorf("retry.initial_interval: %v is above retry.max_interval %v", c.Retry.InitialInterval, c.Retry.MaxInterval)
	}
	if err := (middleware.RecorderConfig{Mode: c.Record.Mode, ProducedMode: c.Record.ProducedMode, WriteTimeout: c.Record.WriteTimeout, Writers: c.Record.Writers}).Validate(); err != nil {
		return err
	}
	if c.Record.BatchSize < 0 {
		return fmt.Errorf("record.batch_size: must be ≥ 1, got %d", c.Record.BatchSize)
	}
	if c.Record.QueueSize < 0 {
		return fmt.Errorf("record.queue_size: must be ≥ 1, got %d", c.Record.QueueSize)
	}
	if c.MaxPayloadBytes < 0 {
		return fmt.Errorf("max_payload_bytes: must be ≥ 0, got %d", c.MaxPayloadBytes)
	}
	if err := c.Retention.validate(); err != nil {
		return err
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// EnvPrefix starts every environment variable that overrides a config key.
const EnvPrefix = "EVENTBUS_"

// envIgnored are EVENTBUS_ variables that are not config keys.
var envIgnored = []string{"EVENTBUS_CONFIG", "EVENTBUS_REQUIRE_SERVICES", "EVENTBUS_TEST_", "EVENTBUS_ADMIN_"}

// LoadConfig reads a config from a YAML or JSON file (by extension; path "" reads none)
// and then applies EVENTBUS_* environment variables: each overrides one key, named by
// its path in upper case with "_" for ".", e.g. EVENTBUS_STORE_DSN or
// EVENTBUS_RETRY_MAX_RETRIES; EVENTBUS_BACKEND_SETTINGS_<KEY> sets one backend setting.
// Unknown keys, in the file or the environment, are errors.
func LoadConfig(path string) (Config, error) {
	return LoadConfigEnv(path, os.Environ())
}

// LoadConfigEnv is LoadConfig with the environment given as "KEY=value" strings.
func LoadConfigEnv(path string, environ []string) (Config, error) {
	raw := map[string]any{}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("config: %w", err)
		}
		switch strings.ToLower(filepath.Ext(path)) {
		case ".json":
			if err := json.Unmarshal(data, &raw); err != nil {
				return Config{}, fmt.Errorf("config %s: invalid JSON: %w", path, err)
			}
		case ".yaml", ".yml", "":
			if err := yaml.Unmarshal(data, &raw); err != nil {
				return Config{}, fmt.Errorf("config %s: invalid YAML: %w", path, err)
			}
		default:
			return Config{}, fmt.Errorf("config %s: unknown file type %q (accepted: .yaml, .yml, .json)", path, filepath.Ext(path))
		}
		if raw == nil {
			raw = map[string]any{}
		}
	}
	fromEnv, err := applyEnv(raw, environ)
	if err != nil {
		return Config{}, err
	}
	var c Config
	if err := decodeInto("", raw, &c); err != nil {
		if name := envSource(err, fromEnv); name != "" {
			return Config{}, fmt.Errorf("config: environment variable %s: %w", name, err)
		}
		if path != "" {
			return Config{}, fmt.Errorf("config %s: %w", path, err)
		}
		return Config{}, fmt.Errorf("config: %w", err)
	}
	retryDefaults(&c, raw)
	// A value an environment variable set is checked here, so that its error names the
	// variable; every other check is New's (a program may fix its config up first).
	checked := c
	checked.setDefaults()
	if err := checked.Validate(); err != nil {
		if name := envSource(err, fromEnv); name != "" {
			return Config{}, fmt.Errorf("config: environment variable %s: %w", name, err)
		}
	}
	return c, nil
}

// retryDefaults gives the retry keys of a file or environment a default each:
// max_retries absent is DefaultRetry's, max_retries 0 means no retries (which a zero
// RetryConfig, the Go API's "default", could not say).
func retryDefaults(c *Config, raw map[string]any) {
	section, ok := asMap(raw["retry"])
	if !ok {
		return
	}
	if _, set := section["max_retries"]; !set {
		c.Retry.MaxRetries = middleware.DefaultRetry.MaxRetries
	} else if c.Retry.MaxRetries == 0 {
		c.Retry.MaxRetries = -1
	}
}

// envSource returns the environment variable that set the key err is about ("" when
// the key did not come from the environment): errors of decoding and Validate start
// with the key's path.
func envSource(err error, fromEnv map[string]string) string {
	msg := err.Error()
	best, name := "", ""
	for key, env := range fromEnv {
		if len(key) > len(best) && strings.HasPrefix(msg, key) && len(msg) > len(key) && (msg[len(key)] == ':' || msg[len(key)] == '.') {
			best, name = key, env
		}
	}
	return name
}

// envKeys maps the environment variable of every leaf key of Config to its path.
func envKeys() map[string][]string {
	out := map[string][]string{}
	var walk func(t reflect.Type, path []string)
	walk = func(t reflect.Type, path []string) {
		keys, names := fieldKeys(t)
		for _, name := range names {
			f := t.FieldByIndex(keys[name])
			p := append(append([]string{}, path...), name)
			if f.Type.Kind() == reflect.Struct && f.Type != durationType {
				walk(f.Type, p)
				continue
			}
			out[EnvPrefix+strings.ToUpper(strings.Join(p, "_"))] = p
		}
	}
	walk(reflect.TypeOf(Config{}), nil)
	return out
}

// applyEnv sets the keys of raw named by EVENTBUS_* variables in environ and returns
// which variable set which key (by its dotted path).
func applyEnv(raw map[string]any, environ []string) (map[string]string, error) {
	keys := envKeys()
	fromEnv := map[string]string{}
	const settingsPrefix = EnvPrefix + "BACKEND_SETTINGS_"
	var unknown []string
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		if ignoredEnv(name) {
			continue
		}
		if strings.HasPrefix(name, settingsPrefix) {
			key := strings.ToLower(strings.TrimPrefix(name, settingsPrefix))
			settings, _ := asMap(raw["backend_settings"])
			if settings == nil {
				settings = map[string]any{}
			}
			var v any
			if err := yaml.Unmarshal([]byte(value), &v); err != nil {
				v = value
			}
			settings[key] = v
			raw["backend_settings"] = settings
			fromEnv["backend_settings."+key] = name
			continue
		}
		path, ok := keys[name]
		if !ok {
			unknown = append(unknown, name)
			continue
		}
		m := raw
		for _, p := range path[:len(path)-1] {
			sub, ok := asMap(m[p])
			if !ok {
				sub = map[string]any{}
			}
			m[p] = sub
			m = sub
		}
		m[path[len(path)-1]] = value
		fromEnv[strings.Join(path, ".")] = name
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		accepted := make([]string, 0, len(keys))
		for k := range keys {
			accepted = append(accepted, k)
		}
		sort.Strings(accepted)
		return nil, fmt.Errorf("config: unknown environment variable %s (accepted: %s, %s<KEY>)",
			strings.Join(unknown, ", "), strings.Join(accepted, ", "), settingsPrefix)
	}
	return fromEnv, nil
}

func ignoredEnv(name string) bool {
	for _, p := range envIgnored {
		if name == p || (strings.HasSuffix(p, "_") && strings.HasPrefix(name, p)) {
			return true
		}
	}
	return false
}
