// Package bustest is the conformance suite of eventbus: the behaviours every backend
// must show through a Bus — recording, retries, the poison queue, redelivery without
// duplicate rows, replay, retry from the store, stopping and starting a consumer, and a
// graceful shutdown that loses no row. It plays for the bus the role Watermill's
// pubsub/tests plays for a publisher and subscriber.
//
// A backend's test calls Run with a function that configures a bus on that backend:
//
//	func TestConformance(t *testing.T) {
//		bustest.Run(t, bustest.Options{
//			Config: func(t testing.TB) bus.Config {
//				return bus.Config{Backend: "nats", BackendSettings: map[string]any{"url": url}}
//			},
//		})
//	}
package bustest

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/middleware"
	"github.com/go-eventbus/eventbus/modelevent"
)

// Options configures a run of the suite.
type Options struct {
	// Config returns the config of a new bus on the backend under test. Backend and
	// BackendSettings are the backend's business; the suite fills Store (a fresh SQLite
	// file), Retry, PoisonTopic, ShutdownTimeout and Record when they are empty.
	Config func(t testing.TB) bus.Config
	// Timeout bounds each wait for messages to be handled. Default 20s.
	Timeout time.Duration
	// NoRetention: the backend drops messages published while a consumer is stopped.
	NoRetention bool
}

// Run runs every conformance test as a subtest of t.
func Run(t *testing.T, opts Options) {
	if opts.Timeout == 0 {
		opts.Timeout = 20 * time.Second
	}
	s := &suite{opts: opts}
	t.Run("PublishConsumeRecords", s.testPublishConsume)
	t.Run("FailThenSucceed", s.testFailThenSucceed)
	t.Run("AlwaysFailIsPoisoned", s.testPoisoned)
	t.Run("PanicIsAnError", s.testPanic)
	t.Run("RedeliveryUpdatesRow", s.testRedelivery)
	t.Run("Replay", s.testReplay)
	t.Run("RetryFromStore", s.testRetry)
	t.Run("StopStartConsumer", s.testStopStart)
	t.Run("GracefulShutdownLosesNoRow", s.testShutdown)
	t.Run("BufferedMode", s.testBuffered)
	t.Run("ScheduledRetry", s.testScheduledRetry)
	t.Run("ScheduledRetryPoisoned", s.testScheduledPoison)
	t.Run("PublishAt", s.testPublishAt)
	t.Run("IdempotentDuplicate", s.testIdempotentDuplicate)
}

type suite struct{ opts Options }

// Topic returns a topic name unique to this test run.
func Topic(t testing.TB, name string) string {
	return fmt.Sprintf("bustest.%s.%s", name, watermill.NewShortUUID())
}

// newBus builds a bus for t from the options and closes it at cleanup.
func (s *suite) newBus(t testing.TB, tweak func(*bus.Config)) *bus.Bus {
	t.Helper()
	cfg := s.opts.Config(t)
	if cfg.EventStore == nil && cfg.Store.Driver == "" {
		cfg.Store = bus.StoreConfig{Driver: "sqlite", DSN: "file:" + filepath.Join(t.TempDir(), "events.db")}
	}
	if cfg.Retry == (middleware.RetryConfig{}) {
		cfg.Retry = middleware.RetryConfig{MaxRetries: 3, InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond, Multiplier: 2}
	}
	if cfg.PoisonTopic == "" {
		cfg.PoisonTopic = Topic(t, "poison")
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	if tweak != nil {
		tweak(&cfg)
	}
	b, err := bus.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("bus.New: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// start runs b in the background until cleanup.
func (s *suite) start(t testing.TB, b *bus.Bus) {
	t.Helper()
	Start(t, b, s.opts.Timeout)
}

// waitFor polls cond until it holds or the timeout passes.
func (s *suite) waitFor(t testing.TB, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(s.opts.Timeout)
	var last string
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s; last state: %s", s.opts.Timeout, what, last)
}

// rows lists every row matching f.
func rows(t testing.TB, store modelevent.Store, f modelevent.Filter) []modelevent.ModelEvent {
	t.Helper()
	return Rows(t, store, f)
}

func countStatus(evs []modelevent.ModelEvent) map[modelevent.Status]int {
	m := map[modelevent.Status]int{}
	for _, e := range evs {
		m[e.Status]++
	}
	return m
}

// counter counts calls per message UUID.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) inc(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[id]++
	return c.n[id]
}

func (c *counter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.n {
		n += v
	}
	return n
}

func (c *counter) distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.n)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func statusText(m map[modelevent.Status]int) string {
	var b strings.Builder
	for _, st := range modelevent.Statuses {
		if m[st] > 0 {
			fmt.Fprintf(&b, "%s=%d ", st, m[st])
		}
	}
	return strings.TrimSpace(b.String())
}
