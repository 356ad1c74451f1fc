package nats

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/bustest"
	"github.com/go-eventbus/eventbus/modelevent"
)

// TestIdempotentGracefulRestart: an idempotent consumer on the NATS server is closed
// gracefully while its 16 subscribers each hold a message in its handler; a new bus
// with the same consumer takes over. Every message ran the handler once in all, those
// whose handlers started while the close began included (a delivery the router hands
// over after it closed is refused, not run unrecorded); the deliveries JetStream sent
// again (acks lost at the close) are counted on the rows as duplicates instead of
// running again (docs/retries.md).
func TestIdempotentGracefulRestart(t *testing.T) {
	const n = 100
	settings := serverSettings(t)
	settings["ack_wait"] = "2s" // the lost acks' messages come again after it
	dsn := "file:" + filepath.Join(t.TempDir(), "events.db")
	topic := "restart.idempotent." + watermill.NewShortUUID() // tests run in parallel processes share the server
	var mu sync.Mutex
	runs := map[string]int{}
	gate := make(chan struct{})
	newBus := func() *bus.Bus {
		b, err := bus.New(context.Background(), bus.Config{
			Backend: "nats", BackendSettings: settings,
			Store:           bus.StoreConfig{Driver: "sqlite", DSN: dsn},
			Idempotency:     bus.IdempotencyConfig{Enabled: true},
			ShutdownTimeout: 10 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Handle("mailer", topic, func(ctx context.Context, msg *message.Message) error {
			mu.Lock()
			runs[msg.UUID]++
			mu.Unlock()
			<-gate
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return b
	}
	inFlight := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(runs)
	}
	first := newBus()
	bustest.Start(t, first, 30*time.Second)
	for i := 0; i < n; i++ {
		if err := first.Publish(context.Background(), topic, message.NewMessage("", []byte(`{}`))); err != nil {
			t.Fatal(err)
		}
	}
	bustest.WaitUntil(t, 30*time.Second, "16 messages in their handlers", func() bool { return inFlight() >= 16 })
	closed := make(chan error, 1)
	go func() { closed <- first.Close() }()
	// The handlers in flight finish during the graceful close, which has begun once
	// the bus reports itself closed (it then stops taking messages and waits for them).
	bustest.WaitUntil(t, 10*time.Second, "the close to begin", func() bool { return first.Live().Checks[bus.CheckBus] == "closed" })
	// The messages in their handlers when the close began: each must run once in all.
	held := map[string]bool{}
	mu.Lock()
	for id := range runs {
		held[id] = true
	}
	mu.Unlock()
	close(gate)
	if err := <-closed; err != nil {
		t.Fatalf("close: %v", err)
	}
	heldAtClose := inFlight()

	second := newBus()
	bustest.Start(t, second, 30*time.Second)
	rows := bustest.WaitRows(t, 60*time.Second, "every message succeeded", second.Store(),
		modelevent.Filter{Topic: topic, Direction: modelevent.Consumed, Statuses: []modelevent.Status{modelevent.StatusSucceeded}},
		func(rows []modelevent.ModelEvent) bool { return len(rows) == n })
	dups := 0
	for _, r := range rows {
		full, err := second.Store().Get(context.Background(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		dups += full.Duplicates
	}
	mu.Lock()
	defer mu.Unlock()
	extra, raced := 0, 0
	for id, k := range runs {
		if held[id] {
			extra += k - 1
		} else {
			raced += k - 1
		}
	}
	t.Logf("%d messages, %d in their handlers when the close began, %d started before it ended: %d handler runs in all; %d redeliveries acked as duplicates",
		n, len(held), heldAtClose, len(runs)+extra+raced, dups)
	if len(runs) != n || extra != 0 || raced != 0 {
		t.Fatalf("%d messages; those in their handlers at the close ran %d extra times, those started during it %d, want 0", len(runs), extra, raced)
	}
}
