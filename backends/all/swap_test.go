package all_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/bustest"
	"github.com/go-eventbus/eventbus/internal/testenv"
	"github.com/go-eventbus/eventbus/internal/testenv/amqptest"
	"github.com/go-eventbus/eventbus/internal/testenv/natstest"
	"github.com/go-eventbus/eventbus/middleware"
	"github.com/go-eventbus/eventbus/modelevent"

	_ "github.com/go-eventbus/eventbus/backends/all"
)

type Order struct {
	ID    int     `json:"id"`
	Total float64 `json:"total"`
}

func (Order) EventModel() string { return "shop.Order" }

// shop is the application: the same code on every backend. It registers three
// consumers, publishes n orders and waits until every row has settled.
func shop(t *testing.T, b *bus.Bus, topic string, n int) {
	var mu sync.Mutex
	tries := map[int]int{}
	must(t, bus.HandleModel(b, "billing", topic, func(ctx context.Context, o Order) error { return nil }))
	must(t, bus.HandleModel(b, "shipping", topic, func(ctx context.Context, o Order) error {
		mu.Lock()
		defer mu.Unlock()
		tries[o.ID]++
		if tries[o.ID] == 1 {
			return errors.New("carrier timeout")
		}
		return nil
	}))
	must(t, bus.HandleModel(b, "fraud", topic, func(ctx context.Context, o Order) error {
		if o.ID%2 == 0 {
			return errors.New("rejected")
		}
		return nil
	}))
	go func() { _ = b.Run(context.Background()) }()
	select {
	case <-b.Running():
	case <-time.After(60 * time.Second):
		t.Fatal("bus did not start")
	}
	for i := 1; i <= n; i++ {
		msg, err := bus.NewModelMessage(Order{ID: i, Total: float64(i)})
		if err == nil {
			err = b.Publish(context.Background(), topic, msg)
		}
		must(t, err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := b.Store().Stats(context.Background(), modelevent.Filter{Topic: topic})
		must(t, err)
		settled := st.ByStatus[modelevent.StatusSucceeded] + st.ByStatus[modelevent.StatusPoisoned]
		if settled == int64(3*n) && st.ByStatus[modelevent.StatusPublished] == int64(n) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("rows did not settle: %v", st.ByStatus)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// picture summarizes the ModelEvents of topic: one line per row, without ids and times.
func picture(t *testing.T, store modelevent.Store, topic string) string {
	page, err := store.List(context.Background(), modelevent.Filter{Topic: topic}, modelevent.ListOptions{Limit: 1000})
	must(t, err)
	var lines []string
	for _, e := range page.Events {
		var o Order
		_ = json.Unmarshal(e.Payload, &o)
		lines = append(lines, fmt.Sprintf("%s %s order=%d model=%s %s attempts=%d", e.Direction, e.Handler, o.ID, e.Model, e.Status, e.Attempts))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// testBackends lists a configuration per backend, each on the services this machine runs.
func testBackends() []testBackend {
	return []testBackend{
		{"memory", func(t *testing.T) map[string]any { return nil }},
		{"kafka", func(t *testing.T) map[string]any {
			c, err := kfake.NewCluster(kfake.NumBrokers(1))
			must(t, err)
			t.Cleanup(c.Close)
			return map[string]any{"broker_hosts": c.ListenAddrs(), "session_timeout": "6s", "heartbeat_interval": "200ms", "rebalance_timeout": "5s"}
		}},
		{"nats", func(t *testing.T) map[string]any {
			return map[string]any{"embedded": true, "store_dir": t.TempDir()}
		}},
		{"nats-server", func(t *testing.T) map[string]any {
			return natstest.Settings(t, "all") // EVENTBUS_TEST_NATS_DSN; streams deleted at the end
		}},
		{"amqp", func(t *testing.T) map[string]any {
			return map[string]any{"url": amqptest.URL(t)} // EVENTBUS_TEST_AMQP_DSN
		}},
		{"sql", func(t *testing.T) map[string]any {
			return map[string]any{"driver": "postgres", "dsn": testenv.FreshPostgres(t), "poll_interval": "20ms"}
		}},
	}
}

// cleanupBroker deletes, when t ends, what the test declared on a shared broker for
// its topics and consumers: the RabbitMQ exchanges and queues (the NATS streams go
// with natstest.Settings; kfake, embedded NATS and memory live in the process).
func cleanupBroker(t *testing.T, backend string, settings map[string]any, topics, consumers []string) {
	if backend != "amqp" {
		return
	}
	var queues []string
	for _, topic := range topics {
		for _, c := range consumers {
			queues = append(queues, topic+"_"+c)
		}
	}
	amqptest.Cleanup(t, settings["url"].(string), topics, queues)
}

// testBackend names a backend configuration.
type testBackend struct {
	name     string
	settings func(t *testing.T) map[string]any
}

// TestSwapBackends runs the same application on every backend; only the config
// differs, and the ModelEvent picture is the same.
func TestSwapBackends(t *testing.T) {
	backends := testBackends()
	const n = 6
	var want string
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			backend := strings.TrimSuffix(be.name, "-server")
			cfg := bus.Config{
				Backend:         backend,
				BackendSettings: be.settings(t),
				Store:           bus.StoreConfig{Driver: "sqlite", DSN: "file:" + filepath.Join(t.TempDir(), "events.db")},
				Retry:           middleware.RetryConfig{MaxRetries: 2, InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond},
				PoisonTopic:     bustest.Topic(t, "poison"),
			}
			topic := bustest.Topic(t, "orders")
			cleanupBroker(t, be.name, cfg.BackendSettings, []string{topic, cfg.PoisonTopic}, []string{"billing", "shipping", "fraud"})
			b, err := bus.New(context.Background(), cfg)
			must(t, err)
			defer b.Close()
			shop(t, b, topic, n)
			got := picture(t, b.Store(), topic)
			if want == "" {
				want = got
				t.Logf("ModelEvent picture on %s:\n%s", be.name, got)
				return
			}
			if got != want {
				t.Fatalf("ModelEvent picture on %s differs:\n%s\nwant (memory):\n%s", be.name, got, want)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
