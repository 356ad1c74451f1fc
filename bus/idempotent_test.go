package bus_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/bustest"
	"github.com/go-eventbus/eventbus/internal/testenv"
	"github.com/go-eventbus/eventbus/modelevent"
	"github.com/go-eventbus/eventbus/outbox"
)

// TestIdempotentOutboxRelay: 200 events published in transactions from 8 goroutines and
// relayed by the outbox to an idempotent consumer run its handler exactly once each.
// Then 20 of them are sent again as the relay does after it was killed between the
// publish and the delete of its outbox row (the same message: UUID, payload,
// metadata): 0 extra handler runs, 20 duplicates counted on the rows
// (docs/retries.md).
func TestIdempotentOutboxRelay(t *testing.T) {
	const n = 200
	b := newTestBus(t, bus.Config{
		Store:       bus.StoreConfig{Driver: "postgres", DSN: testenv.FreshPostgres(t)},
		Outbox:      bus.OutboxConfig{Enabled: true, Config: outbox.Config{PollInterval: 10 * time.Millisecond}},
		Idempotency: bus.IdempotencyConfig{Enabled: true},
	})
	var mu sync.Mutex
	runs := map[string]int{}
	if err := b.Handle("mailer", "signups", func(ctx context.Context, msg *message.Message) error {
		mu.Lock()
		runs[msg.UUID]++
		mu.Unlock()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	runBus(t, b)
	db := b.Store().(*modelevent.SQLStore).DB()
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n/8; i++ {
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					t.Error(err)
					return
				}
				if err := b.PublishTx(ctx, tx, "signups", message.NewMessage("", []byte(fmt.Sprint(g, i)))); err != nil {
					t.Error(err)
					return
				}
				if err := tx.Commit(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	bustest.WaitRows(t, 30*time.Second, "every relayed event handled", b.Store(),
		modelevent.Filter{Direction: modelevent.Consumed, Statuses: []modelevent.Status{modelevent.StatusSucceeded}},
		func(rows []modelevent.ModelEvent) bool { return len(rows) == n })
	bustest.WaitRows(t, 30*time.Second, "every produced row published", b.Store(),
		modelevent.Filter{Direction: modelevent.Produced, Statuses: []modelevent.Status{modelevent.StatusPublished}},
		func(rows []modelevent.ModelEvent) bool { return len(rows) == n })
	const resent = 20
	produced := bustest.Rows(t, b.Store(), modelevent.Filter{Direction: modelevent.Produced})
	for _, p := range produced[:resent] {
		m := message.NewMessage(p.MessageUUID, p.Payload)
		for k, v := range p.Metadata {
			m.Metadata.Set(k, v)
		}
		if err := b.Publisher().Publish("signups", m); err != nil {
			t.Fatal(err)
		}
	}
	dupsOnRows := func() int {
		dups := 0
		for _, r := range bustest.Rows(t, b.Store(), modelevent.Filter{Direction: modelevent.Consumed}) {
			full, err := b.Store().Get(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			dups += full.Duplicates
		}
		return dups
	}
	bustest.WaitUntil(t, 30*time.Second, "the re-sent messages counted as duplicates", func() bool { return dupsOnRows() >= resent })
	mu.Lock()
	defer mu.Unlock()
	extra := 0
	for _, k := range runs {
		extra += k - 1
	}
	dups := dupsOnRows()
	t.Logf("%d events: %d handler runs, %d extra; %d duplicate deliveries counted on the rows", n, len(runs)+extra, extra, dups)
	if len(runs) != n || extra != 0 || dups != resent {
		t.Fatalf("%d messages handled with %d extra runs, want %d and 0 (duplicates %d, want %d)", len(runs), extra, n, dups, resent)
	}
}
