package kafka_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/bustest"
	"github.com/go-eventbus/eventbus/modelevent"
)

// TestIdempotentRebalance: a second process joins an idempotent consumer's group while
// the first handles a stream of messages, and later leaves; the partitions move twice.
// Every message ran the handler once in all. Deliveries read again by a partition's
// new owner would be acked as duplicates; on kfake both rebalances commit cleanly, so
// the test logs how many there were (docs/retries.md: what a rebalance can and cannot
// duplicate).
func TestIdempotentRebalance(t *testing.T) {
	const n = 600
	topic := "rebalance." + watermill.NewShortUUID()
	hosts := startKafka(t, kfake.SeedTopics(4, topic))
	dsn := "file:" + filepath.Join(t.TempDir(), "events.db")
	var mu sync.Mutex
	runs := map[string]int{}
	newBus := func() *bus.Bus {
		b, err := bus.New(context.Background(), bus.Config{
			Backend: "kafka", BackendSettings: settings(hosts, "partitions", 4),
			Store:           bus.StoreConfig{Driver: "sqlite", DSN: dsn},
			Idempotency:     bus.IdempotencyConfig{Enabled: true},
			ShutdownTimeout: 20 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Handle("ledger", topic, func(ctx context.Context, msg *message.Message) error {
			mu.Lock()
			runs[msg.UUID]++
			mu.Unlock()
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return b
	}
	handled := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(runs)
	}
	first := newBus()
	bustest.Start(t, first, 30*time.Second)
	publish := func(from, to int) {
		for i := from; i < to; i++ {
			if err := first.Publish(context.Background(), topic, message.NewMessage("", []byte(`{}`))); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(0, n/3)
	bustest.WaitUntil(t, 60*time.Second, "the first third handled", func() bool { return handled() >= n/3 })
	second := newBus()
	bustest.Start(t, second, 30*time.Second)
	publish(n/3, 2*n/3)
	bustest.WaitUntil(t, 60*time.Second, "the second third handled", func() bool { return handled() >= 2*n/3 })
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
	publish(2*n/3, n)
	rows := bustest.WaitRows(t, 90*time.Second, "every message succeeded", first.Store(),
		modelevent.Filter{Topic: topic, Direction: modelevent.Consumed, Statuses: []modelevent.Status{modelevent.StatusSucceeded}},
		func(rows []modelevent.ModelEvent) bool { return len(rows) == n })
	dups := 0
	for _, r := range rows {
		full, err := first.Store().Get(context.Background(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		dups += full.Duplicates
	}
	mu.Lock()
	defer mu.Unlock()
	extra := 0
	for _, k := range runs {
		extra += k - 1
	}
	t.Logf("%d messages through two rebalances: %d handler runs, %d extra; %d deliveries acked as duplicates", n, len(runs)+extra, extra, dups)
	if len(runs) != n || extra != 0 {
		t.Fatalf("%d messages ran %d extra times, want 0", len(runs), extra)
	}
}
