package bustest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/middleware"
	"github.com/go-eventbus/eventbus/modelevent"
)

// The cases of scheduled retries, delayed publishing and idempotent consumers
// (docs/retries.md). They need the SQL store, which the suite uses unless the backend's
// Config sets an EventStore of its own.

func (s *suite) scheduledBus(t *testing.T, tweak func(*bus.Config)) *bus.Bus {
	t.Helper()
	b := s.newBus(t, func(c *bus.Config) {
		c.Retry = middleware.RetryConfig{MaxRetries: 3, InitialInterval: 50 * time.Millisecond, MaxInterval: 200 * time.Millisecond,
			Multiplier: 2, Mode: middleware.RetryScheduled}
		c.Scheduler.PollInterval = 20 * time.Millisecond
		if tweak != nil {
			tweak(c)
		}
	})
	if _, ok := b.Store().(*modelevent.SQLStore); !ok {
		t.Skip("the backend's config uses a store of its own: no schedule")
	}
	return b
}

// testScheduledRetry: a message that fails 3 times is acked and retried from the store
// while a later message of the same stream is handled; it ends succeeded with 4
// attempts.
func (s *suite) testScheduledRetry(t *testing.T) {
	b := s.scheduledBus(t, nil)
	topic := Topic(t, "scheduled")
	var calls counter
	var mu sync.Mutex
	var order []string
	must(t, b.Handle("scheduled", topic, func(ctx context.Context, msg *message.Message) error {
		n := calls.inc(msg.UUID)
		if string(msg.Payload) == "flaky" && n <= 3 {
			return errors.New("downstream unavailable")
		}
		mu.Lock()
		order = append(order, string(msg.Payload))
		mu.Unlock()
		return nil
	}))
	s.start(t, b)
	flaky := message.NewMessage("", []byte("flaky"))
	must(t, b.Publish(context.Background(), topic, flaky))
	must(t, b.Publish(context.Background(), topic, message.NewMessage("", []byte("next"))))
	var row modelevent.ModelEvent
	s.waitFor(t, "the flaky message to succeed from the schedule", func() (bool, string) {
		got := rows(t, b.Store(), modelevent.Filter{Topic: topic, Direction: modelevent.Consumed, MessageUUID: flaky.UUID})
		if len(got) != 1 {
			return false, fmt.Sprintf("%d rows", len(got))
		}
		row = got[0]
		return row.Status == modelevent.StatusSucceeded, fmt.Sprintf("%s attempts=%d", row.Status, row.Attempts)
	})
	full, err := b.Store().Get(context.Background(), row.ID)
	must(t, err)
	if full.Attempts != 4 || len(full.History) != 4 || full.LastError != "downstream unavailable" {
		t.Fatalf("row: attempts %d, history %d, last error %q; want 4, 4, downstream unavailable", full.Attempts, len(full.History), full.LastError)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(order) != 2 || order[0] != "next" {
		t.Fatalf("handled in order %v, want the next message before the retried one", order)
	}
	// The scheduler removes the entry after the attempt's row is stored: wait for it.
	s.waitFor(t, "the schedule entry to be removed after the success", func() (bool, string) {
		_, err := b.Store().(*modelevent.SQLStore).GetScheduled(context.Background(), flaky.UUID, "scheduled")
		return errors.Is(err, modelevent.ErrNotScheduled), fmt.Sprintf("GetScheduled: %v", err)
	})
}

// testScheduledPoison: a message that always fails is poisoned past the limit, as an
// inline one is: on the poison topic with the reason, its row poisoned.
func (s *suite) testScheduledPoison(t *testing.T) {
	b := s.scheduledBus(t, func(c *bus.Config) { c.Retry.MaxRetries = 2 })
	// The poison topic's watcher retries inline: it must not be scheduled itself.
	full := s.poisonOne(t, b, "scheduled-doomed", &bus.ConsumerOptions{RetryMode: middleware.RetryInline})
	if full.Attempts != 3 || len(full.History) != 3 {
		t.Fatalf("poisoned row: attempts %d history %d, want 3", full.Attempts, len(full.History))
	}
}

// testPublishAt: messages published with PublishIn are consumed once each, never
// before their time; their produced rows go from scheduled to published.
func (s *suite) testPublishAt(t *testing.T) {
	b := s.scheduledBus(t, nil)
	topic := Topic(t, "delayed")
	var calls counter
	var early sync.Map
	var at time.Time
	must(t, b.Handle("delayed", topic, func(ctx context.Context, msg *message.Message) error {
		if time.Now().Before(at) {
			early.Store(msg.UUID, time.Now())
		}
		calls.inc(msg.UUID)
		return nil
	}))
	s.start(t, b)
	const n = 20
	msgs := make([]*message.Message, n)
	for i := range msgs {
		msgs[i] = message.NewMessage("", []byte(fmt.Sprint(i)))
	}
	at = time.Now().Add(300 * time.Millisecond)
	ids, err := b.PublishAt(context.Background(), at, topic, msgs...)
	must(t, err)
	if len(ids) != n {
		t.Fatalf("ids = %d", len(ids))
	}
	got := rows(t, b.Store(), modelevent.Filter{Topic: topic, Direction: modelevent.Produced})
	if c := countStatus(got); c[modelevent.StatusScheduled] != n && time.Now().Before(at) {
		t.Fatalf("produced rows before their time: %s", statusText(c))
	}
	s.waitFor(t, "every delayed message consumed", func() (bool, string) {
		return calls.distinct() == n, fmt.Sprintf("%d of %d consumed", calls.distinct(), n)
	})
	s.waitFor(t, "every produced row published", func() (bool, string) {
		c := countStatus(rows(t, b.Store(), modelevent.Filter{Topic: topic, Direction: modelevent.Produced}))
		return c[modelevent.StatusPublished] == n, statusText(c)
	})
	if calls.total() != n {
		t.Fatalf("handler ran %d times for %d messages", calls.total(), n)
	}
	early.Range(func(k, v any) bool {
		t.Errorf("message %v consumed at %v, before its time %v", k, v, at)
		return true
	})
}

// testIdempotentDuplicate: a redelivery of a message whose row already succeeded (its
// ack was lost) is acked by an idempotent consumer without running the handler, and
// counted on the row.
func (s *suite) testIdempotentDuplicate(t *testing.T) {
	on := true
	b := s.scheduledBus(t, nil)
	topic := Topic(t, "idempotent")
	var calls counter
	must(t, b.HandleWith("once", topic, func(ctx context.Context, msg *message.Message) error {
		calls.inc(msg.UUID)
		return nil
	}, bus.ConsumerOptions{Idempotent: &on}))
	LoseFirstAck(b, topic, func(*message.Message) bool { return true })
	s.start(t, b)
	const n = 5
	for i := 0; i < n; i++ {
		must(t, b.Publish(context.Background(), topic, message.NewMessage("", []byte(fmt.Sprint(i)))))
	}
	s.waitFor(t, "every redelivery counted as a duplicate on its row", func() (bool, string) {
		got := rows(t, b.Store(), modelevent.Filter{Topic: topic, Direction: modelevent.Consumed})
		dups := 0
		for _, r := range got {
			full, err := b.Store().Get(context.Background(), r.ID)
			must(t, err)
			dups += full.Duplicates
		}
		return len(got) == n && dups == n, fmt.Sprintf("%d rows, %d duplicates", len(got), dups)
	})
	if calls.total() != n {
		t.Fatalf("handler ran %d times for %d messages, each delivered twice; want %d", calls.total(), n, n)
	}
	for _, r := range rows(t, b.Store(), modelevent.Filter{Topic: topic, Direction: modelevent.Consumed}) {
		if r.Attempts != 1 || r.Status != modelevent.StatusSucceeded {
			t.Fatalf("row %s: %s with %d attempts, want succeeded with 1", r.MessageUUID, r.Status, r.Attempts)
		}
	}
}
