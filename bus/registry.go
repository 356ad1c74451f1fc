package bus

import (
	"context"
	"fmt"
	"github.com/go-eventbus/eventbus/internal/wmlog"
	"log/slog"
	"sort"
	"sync"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
)

// Backend is a message broker made usable by the bus: a Watermill publisher for every
// topic and a subscriber per consumer. Every consumer receives every message of the
// topics it subscribes to; processes that use the same consumer name share that
// consumer's messages (a consumer group), as far as the broker supports it.
type Backend interface {
	// Publisher returns the publisher for every topic. It is safe for concurrent use
	// and stays open until the backend is closed.
	Publisher() message.Publisher
	// Subscriber returns a new subscriber for the named consumer. The bus closes it when
	// the consumer stops, and asks for a new one when it starts again; messages
	// published in between wait for the consumer where the broker keeps them.
	Subscriber(consumer string) (message.Subscriber, error)
	// Close closes the publisher and releases the backend's connections. It is
	// idempotent.
	Close() error
}

// Backlogger is implemented by backends that can tell how many messages of a topic
// wait for a consumer (Kafka lag, JetStream pending, queue depth). The console shows it.
type Backlogger interface {
	// Backlog returns the number of messages of topic not yet acked by consumer.
	Backlog(ctx context.Context, consumer, topic string) (int64, error)
}

// BackendOptions is what the bus passes to a BackendFactory besides the settings.
type BackendOptions struct {
	// Logger is the bus's logger; never nil.
	Logger *slog.Logger
	// WatermillLogger adapts Logger for Watermill; never nil.
	WatermillLogger watermill.LoggerAdapter
}

// BackendFactory builds a Backend from its backend_settings. It rejects unknown keys and
// bad values (DecodeSettings does both) and fails, within a bounded time, when the
// broker cannot be reached; errors name the backend and the key.
type BackendFactory func(ctx context.Context, settings map[string]any, opts BackendOptions) (Backend, error)

var (
	registryMu sync.RWMutex
	registry   = map[string]BackendFactory{}
)

// Register makes a backend available by name, for Config.Backend. Backend packages call
// it from init, as database/sql drivers do. It panics if name is empty, factory is nil
// or name is already registered.
func Register(name string, factory BackendFactory) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if name == "" {
		panic("bus: Register with an empty backend name")
	}
	if factory == nil {
		panic(fmt.Sprintf("bus: Register backend %q with a nil factory", name))
	}
	if _, dup := registry[name]; dup {
		panic(fmt.Sprintf("bus: Register called twice for backend %q", name))
	}
	registry[name] = factory
}

// Backends returns the names of the registered backends, sorted.
func Backends() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func lookup(name string) (BackendFactory, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	f, ok := registry[name]
	return f, ok
}

// OpenBackend builds the named registered backend from its settings.
func OpenBackend(ctx context.Context, name string, settings map[string]any, opts BackendOptions) (Backend, error) {
	f, ok := lookup(name)
	if !ok {
		return nil, fmt.Errorf("backend: unknown backend %q (forgotten import of github.com/go-eventbus/eventbus/backends/%s?); registered: %v", name, name, Backends())
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.WatermillLogger == nil {
		opts.WatermillLogger = wmlog.New(opts.Logger)
	}
	b, err := f(ctx, settings, opts)
	if err != nil {
		return nil, fmt.Errorf("backend %s: %w", name, err)
	}
	return b, nil
}
