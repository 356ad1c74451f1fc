package kafka_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/bustest"
	"github.com/go-eventbus/eventbus/internal/testenv"
	"github.com/go-eventbus/eventbus/modelevent"
)

// TestRebalanceRereads: two bus processes on one PostgreSQL store share a consumer
// group on a 16-partition topic; while messages flow a third joins and then one of
// the first two shuts down, so partitions move twice and their new owners read again
// what was handed out but not committed. Without idempotency some messages run their
// handler twice (logged: the test does produce duplicate deliveries); with it every
// message runs once, and the re-read deliveries are counted on the rows (duplicates)
// (docs/retries.md).
func TestRebalanceRereads(t *testing.T) {
	for _, idempotent := range []bool{false, true} {
		name := "not idempotent"
		if idempotent {
			name = "idempotent"
		}
		t.Run(name, func(t *testing.T) {
			r := rebalanceRun(t, idempotent)
			t.Logf("%d messages, 2 rebalances: %d handler runs, %d extra; %d deliveries acked as duplicates (on the rows)", r.messages, r.runs, r.extra, r.duplicates)
			if r.handled != r.messages {
				t.Fatalf("%d messages handled, want %d", r.handled, r.messages)
			}
			if idempotent && r.extra != 0 {
				t.Fatalf("idempotent: %d extra handler runs, want 0", r.extra)
			}
			if idempotent && r.duplicates == 0 {
				t.Fatalf("idempotent: no duplicate delivery counted on the rows: the rebalances re-read nothing (see the log of the other run)")
			}
		})
	}
}

type rebalanceResult struct {
	messages, handled, runs, extra, duplicates int
}

func rebalanceRun(t *testing.T, idempotent bool) rebalanceResult {
	const n = 1500
	topic := "rebalance." + watermill.NewShortUUID()
	hosts := startKafka(t, kfake.SeedTopics(16, topic))
	dsn := testenv.FreshPostgres(t)
	var mu sync.Mutex
	runs := map[string]int{}
	newBus := func() *bus.Bus {
		b, err := bus.New(context.Background(), bus.Config{
			Backend: "kafka", BackendSettings: settings(hosts, "partitions", 16),
			Store:           bus.StoreConfig{Driver: "postgres", DSN: dsn},
			Idempotency:     bus.IdempotencyConfig{Enabled: idempotent},
			ShutdownTimeout: 20 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Handle("ledger", topic, func(ctx context.Context, msg *message.Message) error {
			mu.Lock()
			runs[msg.UUID]++
			mu.Unlock()
			// Long enough that each partition has a message in its handler when the
			// partitions move.
			time.Sleep(2 * time.Millisecond)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		bustest.Start(t, b, 30*time.Second)
		return b
	}
	handled := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(runs)
	}
	a, b := newBus(), newBus()
	// The publisher keeps messages flowing through both rebalances.
	published := make(chan int, n)
	go func() {
		defer close(published)
		for i := 0; i < n; i++ {
			if err := a.Publish(context.Background(), topic, message.NewMessage("", []byte(`{}`))); err != nil {
				t.Error(err)
				return
			}
			published <- i
			if i%50 == 49 {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()
	bustest.WaitUntil(t, 60*time.Second, "a third of the messages handled", func() bool { return handled() >= n/3 })
	newBus() // joins the group: the partitions move
	bustest.WaitUntil(t, 60*time.Second, "two thirds of the messages handled", func() bool { return handled() >= 2*n/3 })
	if err := b.Close(); err != nil { // leaves the group: its partitions move
		t.Fatal(err)
	}
	for range published {
	}
	rows := bustest.WaitRows(t, 120*time.Second, "every message succeeded", a.Store(),
		modelevent.Filter{Topic: topic, Direction: modelevent.Consumed, Statuses: []modelevent.Status{modelevent.StatusSucceeded}},
		func(rows []modelevent.ModelEvent) bool { return len(rows) == n })
	// Deliveries re-read after the last rebalance may still come: count once the group
	// has committed every offset (no backlog) and no handler runs.
	bl := a.Backend().(bus.Backlogger)
	bustest.WaitUntil(t, 60*time.Second, "the group's backlog empty", func() bool {
		lag, err := bl.Backlog(context.Background(), "ledger", topic)
		for _, c := range a.Consumers() {
			if c.InFlight != 0 {
				return false
			}
		}
		return err == nil && lag == 0
	})
	r := rebalanceResult{messages: n}
	for _, row := range rows {
		full, err := a.Store().Get(context.Background(), row.ID)
		if err != nil {
			t.Fatal(err)
		}
		r.duplicates += full.Duplicates
	}
	mu.Lock()
	defer mu.Unlock()
	r.handled = len(runs)
	for _, k := range runs {
		r.runs += k
		r.extra += k - 1
	}
	return r
}
