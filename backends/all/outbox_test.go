package all_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/bustest"
	"github.com/go-eventbus/eventbus/modelevent"
	"github.com/go-eventbus/eventbus/outbox"
)

// TestOutboxRelayToEveryBackend: events published with PublishTx in committed
// transactions reach the consumer on every backend, in order per object where the
// backend orders; events of rolled-back transactions never do.
func TestOutboxRelayToEveryBackend(t *testing.T) {
	for _, be := range testBackends() {
		t.Run(be.name, func(t *testing.T) {
			settings := be.settings(t)
			// The test checks the order of one object's events: NATS and RabbitMQ keep
			// publish order with one stream per consumer (their defaults run 16);
			// Kafka keeps it per key.
			switch be.name {
			case "nats", "nats-server":
				settings["subscribers_count"] = 1
			case "amqp":
				settings["concurrency"] = 1
			}
			cfg := bus.Config{
				Backend:         strings.TrimSuffix(be.name, "-server"),
				BackendSettings: settings,
				Store:           bus.StoreConfig{Driver: "sqlite", DSN: "file:" + filepath.Join(t.TempDir(), "app.db")},
				PoisonTopic:     bustest.Topic(t, "poison"),
				Outbox:          bus.OutboxConfig{Enabled: true, Config: outbox.Config{PollInterval: 10 * time.Millisecond}},
			}
			topic := bustest.Topic(t, "orders")
			cleanupBroker(t, be.name, settings, []string{topic, cfg.PoisonTopic}, []string{"projection"})
			b, err := bus.New(context.Background(), cfg)
			must(t, err)
			defer b.Close()
			got := make(chan Order, 100)
			must(t, bus.HandleModel(b, "projection", topic, func(ctx context.Context, o Order) error { got <- o; return nil }))
			go func() { _ = b.Run(context.Background()) }()
			<-b.Running()
			db := b.Store().(*modelevent.SQLStore).DB()
			ctx := context.Background()
			const n = 10
			for i := 1; i <= n; i++ {
				tx, err := db.BeginTx(ctx, nil)
				must(t, err)
				msg, err := bus.NewChangeMessage(Order{ID: i, Total: float64(i)}, "42", modelevent.Updated)
				if err == nil {
					err = b.PublishTx(ctx, tx, topic, msg)
				}
				must(t, err)
				if i%3 == 0 {
					must(t, tx.Rollback())
				} else {
					must(t, tx.Commit())
				}
			}
			var seen []int
			timeout := time.After(60 * time.Second)
			for len(seen) < n-n/3 {
				select {
				case o := <-got:
					seen = append(seen, o.ID)
				case <-timeout:
					t.Fatalf("received %v", seen)
				}
			}
			time.Sleep(200 * time.Millisecond)
			select {
			case o := <-got:
				seen = append(seen, o.ID)
			default:
			}
			want := "[1 2 4 5 7 8 10]"
			if fmt.Sprint(seen) != want && be.name != "memory" {
				t.Fatalf("received %v, want %s (committed ones, in order)", seen, want)
			}
			if len(seen) != n-n/3 {
				t.Fatalf("received %v, want the 7 committed", seen)
			}
			for _, id := range seen {
				if id%3 == 0 {
					t.Fatalf("a rolled-back event arrived: %v", seen)
				}
			}
			st, err := b.Store().Stats(ctx, modelevent.Filter{Model: "shop.Order", ObjectID: "42", Direction: modelevent.Produced})
			must(t, err)
			if st.Total != n-n/3 || st.ByStatus[modelevent.StatusPublished] != n-n/3 {
				t.Fatalf("produced rows about order 42: %+v", st)
			}
		})
	}
}
