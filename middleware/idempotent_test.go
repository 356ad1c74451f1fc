package middleware_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/internal/testenv"
	"github.com/go-eventbus/eventbus/middleware"
	"github.com/go-eventbus/eventbus/modelevent"
)

// TestIdempotentConcurrentDuplicates: two deliveries of one message to one consumer at
// the same time, in two "processes" (two stores and recorders on one PostgreSQL
// database; on SQLite two chains of one process): the handler runs once, the other
// delivery waits for it and is acked as a duplicate, counted on the row.
func TestIdempotentConcurrentDuplicates(t *testing.T) {
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			var open func() *modelevent.SQLStore
			switch driver {
			case "sqlite":
				s := openStore(t)
				open = func() *modelevent.SQLStore { return s }
			case "postgres":
				dsn := testenv.FreshPostgres(t)
				open = func() *modelevent.SQLStore {
					s, err := modelevent.Open(context.Background(), "postgres", dsn)
					if err != nil {
						t.Fatal(err)
					}
					if err := s.Migrate(context.Background()); err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { s.Close() })
					return s
				}
			}
			var runs atomic.Int32
			gate := make(chan struct{})
			handler := func(msg *message.Message) ([]*message.Message, error) {
				if runs.Add(1) == 1 {
					<-gate
				}
				return nil, nil
			}
			chains := make([]message.HandlerFunc, 2)
			var store *modelevent.SQLStore
			for i := range chains {
				s := open()
				store = s
				rec, err := middleware.NewRecorder(s, middleware.RecorderConfig{Backend: "memory"})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = rec.Close(context.Background()) })
				idem, err := middleware.Idempotent(middleware.IdempotencyConfig{Store: s, Holder: "process-" + string(rune('a'+i)), PollInterval: 5 * time.Millisecond})
				if err != nil {
					t.Fatal(err)
				}
				chains[i] = idem(rec.Consumed(handler))
			}
			deliver := func(i int) error {
				msg := message.NewMessage("m-1", []byte(`{}`))
				msg.SetContext(middleware.ContextWithConsumer(context.Background(), "billing", "orders"))
				_, err := chains[i](msg)
				return err
			}
			var wg sync.WaitGroup
			errs := make([]error, 2)
			wg.Add(1)
			go func() { defer wg.Done(); errs[0] = deliver(0) }()
			for runs.Load() == 0 { // the first delivery is in its handler, holding the claim
				time.Sleep(time.Millisecond)
			}
			wg.Add(1)
			go func() { defer wg.Done(); errs[1] = deliver(1) }()
			// The second delivery waits on the claim: it has not run the handler after
			// its polls have had the time of several looks.
			deadline := time.Now().Add(100 * time.Millisecond)
			for time.Now().Before(deadline) {
				if runs.Load() != 1 {
					t.Fatalf("the handler ran %d times while the first run held its claim", runs.Load())
				}
				time.Sleep(5 * time.Millisecond)
			}
			close(gate)
			wg.Wait()
			if errs[0] != nil || errs[1] != nil {
				t.Fatalf("deliveries: %v, %v", errs[0], errs[1])
			}
			if runs.Load() != 1 {
				t.Fatalf("handler ran %d times, want 1", runs.Load())
			}
			page, err := store.List(context.Background(), modelevent.Filter{MessageUUID: "m-1"}, modelevent.ListOptions{})
			if err != nil || len(page.Events) != 1 {
				t.Fatalf("rows: %+v, %v", page.Events, err)
			}
			full, err := store.Get(context.Background(), page.Events[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			if full.Status != modelevent.StatusSucceeded || full.Attempts != 1 || full.Duplicates != 1 {
				t.Fatalf("row: %s, %d attempts, %d duplicates; want succeeded, 1, 1", full.Status, full.Attempts, full.Duplicates)
			}
		})
	}
}
