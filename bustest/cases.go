package bustest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/control"
	"github.com/go-eventbus/eventbus/middleware"
	"github.com/go-eventbus/eventbus/modelevent"
)

type order struct {
	ID    int    `json:"id"`
	Total string `json:"total"`
}

func (order) EventModel() string { return "shop.Order" }

func (s *suite) testPublishConsume(t *testing.T) {
	b := s.newBus(t, nil)
	topic := Topic(t, "orders")
	var a, c counter
	must(t, bus.HandleModel(b, "billing", topic, func(ctx context.Context, o order) error {
		a.inc(fmt.Sprint(o.ID))
		return nil
	}))
	must(t, b.Handle("shipping", topic, func(ctx context.Context, msg *message.Message) error {
		c.inc(msg.UUID)
		return nil
	}))
	s.start(t, b)
	const n = 10
	ids := map[string]bool{}
	for i := 0; i < n; i++ {
		msg, err := bus.NewModelMessage(order{ID: i, Total: "9.99"})
		if err == nil {
			err = b.Publish(context.Background(), topic, msg)
		}
		id := msg.UUID
		must(t, err)
		ids[id] = true
	}
	store := b.Store()
	s.waitFor(t, "every message consumed by both consumers and recorded", func() (bool, string) {
		got := rows(t, store, modelevent.Filter{Topic: topic, Direction: modelevent.Consumed, Statuses: []modelevent.Status{modelevent.StatusSucceeded}})
		return len(got) == 2*n, fmt.Sprintf("%d succeeded consumed rows, handlers saw %d and %d", len(got), a.distinct(), c.distinct())
	})
	produced := rows(t, store, modelevent.Filter{Topic: topic, Direction: modelevent.Produced})
	if len(produced) != n {
		t.Fatalf("produced rows = %d, want %d", len(produced), n)
	}
	for _, p := range produced {
		if p.Status != modelevent.StatusPublished || p.Model != "shop.Order" || p.CorrelationID != p.MessageUUID || !ids[p.MessageUUID] || p.Attempts != 1 {
			t.Fatalf("produced row not as published: %+v", p)
		}
	}
	consumed := rows(t, store, modelevent.Filter{Topic: topic, Direction: modelevent.Consumed})
	per := map[string]int{}
	for _, r := range consumed {
		per[r.Handler]++
		if r.Attempts != 1 || r.Model != "shop.Order" || !ids[r.MessageUUID] || r.CorrelationID != r.MessageUUID {
			t.Fatalf("consumed row not as expected: %+v", r)
		}
	}
	if per["billing"] != n || per["shipping"] != n {
		t.Fatalf("rows per handler = %v, want %d each", per, n)
	}
	full, err := store.Get(context.Background(), consumed[0].ID)
	must(t, err)
	if len(full.History) != 1 || full.History[0].Error != "" || string(full.Payload) == "" {
		t.Fatalf("consumed row detail: %+v", full)
	}
}

func (s *suite) testFailThenSucceed(t *testing.T) {
	b := s.newBus(t, nil)
	topic := Topic(t, "flaky")
	var calls counter
	must(t, b.Handle("flaky", topic, func(ctx context.Context, msg *message.Message) error {
		if calls.inc(msg.UUID) <= 2 {
			return errors.New("downstream unavailable")
		}
		return nil
	}))
	s.start(t, b)
	msg := message.NewMessage("", []byte(`{"n":1}`))
	must(t, b.Publish(context.Background(), topic, msg))
	var row modelevent.ModelEvent
	s.waitFor(t, "the flaky handler to succeed on its third attempt", func() (bool, string) {
		got := rows(t, b.Store(), modelevent.Filter{Topic: topic, Direction: modelevent.Consumed})
		if len(got) != 1 {
			return false, fmt.Sprintf("%d rows", len(got))
		}
		row = got[0]
		return row.Status == modelevent.StatusSucceeded, fmt.Sprintf("%s attempts=%d", row.Status, row.Attempts)
	})
	full, err := b.Store().Get(context.Background(), row.ID)
	must(t, err)
	if full.Attempts != 3 || len(full.History) != 3 {
		t.Fatalf("attempts = %d, history = %d, want 3 and 3", full.Attempts, len(full.History))
	}
	for i, a := range full.History {
		want := ""
		if i < 2 {
			want = "downstream unavailable"
		}
		if a.Error != want {
			t.Fatalf("attempt %d error = %q, want %q", i+1, a.Error, want)
		}
	}
	if full.LastError != "downstream unavailable" {
		t.Fatalf("last error = %q", full.LastError)
	}
}

func (s *suite) testPoisoned(t *testing.T) {
	b := s.newBus(t, nil)
	full := s.poisonOne(t, b, "doomed", nil)
	want := b.Config().Retry.MaxRetries + 1
	if full.Attempts != want || len(full.History) != want || full.LastError != "card declined" {
		t.Fatalf("poisoned row: attempts %d history %d error %q, want %d attempts", full.Attempts, len(full.History), full.LastError, want)
	}
}

// poisonOne runs a consumer "doomed" that always fails ("card declined") on a topic of
// its own, publishes one message, waits until it is on the poison topic with the
// poison metadata and its row is poisoned, and returns the row with its history.
// watch are the options of the poison topic's watcher (nil: b.Handle).
func (s *suite) poisonOne(t *testing.T, b *bus.Bus, name string, watch *bus.ConsumerOptions) modelevent.ModelEvent {
	t.Helper()
	topic := Topic(t, name)
	poison := b.Config().PoisonTopic
	var poisoned sync.Map
	must(t, b.Handle("doomed", topic, func(ctx context.Context, msg *message.Message) error {
		return errors.New("card declined")
	}))
	watcher := func(ctx context.Context, msg *message.Message) error {
		poisoned.Store(msg.UUID, msg.Metadata)
		return nil
	}
	if watch != nil {
		must(t, b.HandleWith("poison-watch", poison, watcher, *watch))
	} else {
		must(t, b.Handle("poison-watch", poison, watcher))
	}
	s.start(t, b)
	msg := message.NewMessage("", []byte(`{"n":2}`))
	must(t, b.Publish(context.Background(), topic, msg))
	s.waitFor(t, "the message on the poison topic and its row poisoned", func() (bool, string) {
		got := rows(t, b.Store(), modelevent.Filter{Topic: topic, Direction: modelevent.Consumed})
		_, onPoison := poisoned.Load(msg.UUID)
		if len(got) != 1 {
			return false, fmt.Sprintf("%d rows", len(got))
		}
		return onPoison && got[0].Status == modelevent.StatusPoisoned, fmt.Sprintf("row %s, on poison topic: %v", got[0].Status, onPoison)
	})
	md, _ := poisoned.Load(msg.UUID)
	meta := md.(message.Metadata)
	if meta.Get(middleware.PoisonReasonKey) != "card declined" || meta.Get(middleware.PoisonedTopicKey) != topic || meta.Get(middleware.PoisonedHandlerKey) != "doomed" {
		t.Fatalf("poison metadata = %v", meta)
	}
	row := rows(t, b.Store(), modelevent.Filter{Topic: topic, Direction: modelevent.Consumed})[0]
	full, err := b.Store().Get(context.Background(), row.ID)
	must(t, err)
	return full
}

func (s *suite) testPanic(t *testing.T) {
	b := s.newBus(t, nil)
	topic := Topic(t, "panicky")
	var calls counter
	must(t, b.Handle("panicky", topic, func(ctx context.Context, msg *message.Message) error {
		if calls.inc(msg.UUID) == 1 {
			panic("nil map write")
		}
		return nil
	}))
	s.start(t, b)
	must(t, b.Publish(context.Background(), topic, message.NewMessage("", []byte("x"))))
	s.waitFor(t, "the handler to succeed after a panic", func() (bool, string) {
		got := rows(t, b.Store(), modelevent.Filter{Topic: topic, Direction: modelevent.Consumed})
		if len(got) != 1 {
			return false, fmt.Sprintf("%d rows", len(got))
		}
		return got[0].Status == modelevent.StatusSucceeded && got[0].Attempts == 2, fmt.Sprintf("%s attempts %d", got[0].Status, got[0].Attempts)
	})
	row := rows(t, b.Store(), modelevent.Filter{Topic: topic, Direction: modelevent.Consumed})[0]
	if row.LastError == "" || !strings.Contains(row.LastError, "nil map write") {
		t.Fatalf("panic not recorded as the error: %q", row.LastError)
	}
}

func (s *suite) testRedelivery(t *testing.T) {
	b := s.newBus(t, nil)
	topic := Topic(t, "redelivered")
	var lostAck sync.Map
	// A router-level middleware outside the bus chain: the first delivery is recorded,
	// then its ack is "lost" (nacked), so the broker delivers the message again.
	b.Router().AddMiddleware(func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			out, err := h(msg)
			if message.SubscribeTopicFromCtx(msg.Context()) == topic {
				if _, seen := lostAck.LoadOrStore(msg.UUID, true); !seen {
					return out, errors.New("simulated lost ack")
				}
			}
			return out, err
		}
	})
	var calls counter
	must(t, b.Handle("idempotent", topic, func(ctx context.Context, msg *message.Message) error {
		calls.inc(msg.UUID)
		return nil
	}))
	s.start(t, b)
	must(t, b.Publish(context.Background(), topic, message.NewMessage("", []byte("again"))))
	s.waitFor(t, "the redelivery recorded on the same row", func() (bool, string) {
		got := rows(t, b.Store(), modelevent.Filter{Topic: topic, Direction: modelevent.Consumed})
		if len(got) == 0 {
			return false, "no rows"
		}
		return len(got) == 1 && got[0].Attempts == 2, fmt.Sprintf("%d rows, first has %d attempts; handler ran %d times", len(got), got[0].Attempts, calls.total())
	})
	time.Sleep(100 * time.Millisecond)
	if got := rows(t, b.Store(), modelevent.Filter{Topic: topic, Direction: modelevent.Consumed}); len(got) != 1 || got[0].Status != modelevent.StatusSucceeded {
		t.Fatalf("after redelivery: %d rows, %+v", len(got), got)
	}
}

func (s *suite) testReplay(t *testing.T) {
	b := s.newBus(t, nil)
	topic := Topic(t, "replayed")
	var calls counter
	must(t, b.Handle("audit", topic, func(ctx context.Context, msg *message.Message) error {
		calls.inc(msg.UUID)
		return nil
	}))
	s.start(t, b)
	must(t, b.Publish(context.Background(), topic, message.NewMessage("", []byte(`{"replay":true}`))))
	s.waitFor(t, "the first delivery", func() (bool, string) { return calls.total() == 1, fmt.Sprint(calls.total()) })
	orig := rows(t, b.Store(), modelevent.Filter{Topic: topic, Direction: modelevent.Produced})[0]
	newID, err := b.Replay(context.Background(), orig.ID)
	must(t, err)
	s.waitFor(t, "the replayed delivery", func() (bool, string) { return calls.distinct() == 2, fmt.Sprint(calls.distinct()) })
	replay, err := b.Store().Get(context.Background(), newID)
	must(t, err)
	if replay.Metadata[modelevent.MetadataReplayOf] != orig.ID || string(replay.Payload) != string(orig.Payload) || replay.MessageUUID == orig.MessageUUID || replay.CorrelationID != orig.CorrelationID {
		t.Fatalf("replay row %+v does not link to %+v", replay, orig)
	}
	if _, err := b.Replay(context.Background(), "01ARZ3NDEKTSV4RRFFQ69G5FAV"); !errors.Is(err, modelevent.ErrNotFound) {
		t.Fatalf("replay of a missing event: err = %v, want ErrNotFound", err)
	}
}

func (s *suite) testRetry(t *testing.T) {
	b := s.newBus(t, func(c *bus.Config) { c.Retry = middleware.RetryConfig{MaxRetries: -1} })
	topic := Topic(t, "retried")
	var healthy atomic.Bool
	must(t, b.Handle("mailer", topic, func(ctx context.Context, msg *message.Message) error {
		if !healthy.Load() {
			return errors.New("smtp down")
		}
		return nil
	}))
	s.start(t, b)
	must(t, b.Publish(context.Background(), topic, message.NewMessage("", []byte("mail"))))
	var row modelevent.ModelEvent
	s.waitFor(t, "the row poisoned", func() (bool, string) {
		got := rows(t, b.Store(), modelevent.Filter{Topic: topic, Direction: modelevent.Consumed})
		if len(got) != 1 {
			return false, fmt.Sprintf("%d rows", len(got))
		}
		row = got[0]
		return row.Status == modelevent.StatusPoisoned, string(row.Status)
	})
	if err := b.Retry(context.Background(), row.ID); err == nil || !strings.Contains(err.Error(), "smtp down") {
		t.Fatalf("retry while still failing: err = %v, want the handler's error", err)
	}
	healthy.Store(true)
	must(t, b.Retry(context.Background(), row.ID))
	full, err := b.Store().Get(context.Background(), row.ID)
	must(t, err)
	if full.Status != modelevent.StatusSucceeded || full.Attempts != 3 || len(full.History) != 3 {
		t.Fatalf("after retry: status %s attempts %d history %d, want succeeded 3 3", full.Status, full.Attempts, len(full.History))
	}
	if err := b.Retry(context.Background(), "01ARZ3NDEKTSV4RRFFQ69G5FAV"); !errors.Is(err, modelevent.ErrNotFound) {
		t.Fatalf("retry of a missing event: err = %v", err)
	}
	produced := rows(t, b.Store(), modelevent.Filter{Topic: topic, Direction: modelevent.Produced})[0]
	if err := b.Retry(context.Background(), produced.ID); err == nil {
		t.Fatal("retry of a produced event succeeded; want a clear refusal")
	}
	if _, err := b.Inspector().Retry(context.Background(), produced.ID, "nobody"); !errors.Is(err, control.ErrUnknownConsumer) {
		t.Fatalf("retry with an unknown consumer: err = %v, want ErrUnknownConsumer", err)
	}
}

func (s *suite) testStopStart(t *testing.T) {
	b := s.newBus(t, nil)
	topic := Topic(t, "controlled")
	var stopped, other counter
	must(t, b.Handle("pausable", topic, func(ctx context.Context, msg *message.Message) error {
		stopped.inc(msg.UUID)
		return nil
	}))
	must(t, b.Handle("steady", topic, func(ctx context.Context, msg *message.Message) error {
		other.inc(msg.UUID)
		return nil
	}))
	s.start(t, b)
	must(t, b.Publish(context.Background(), topic, message.NewMessage("", []byte("0"))))
	s.waitFor(t, "both consumers to handle the first message", func() (bool, string) {
		return stopped.total() == 1 && other.total() == 1, fmt.Sprint(stopped.total(), other.total())
	})
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
	defer cancel()
	must(t, b.StopConsumer(ctx, "pausable"))
	if info, _ := b.Consumer("pausable"); info.State != control.Stopped {
		t.Fatalf("state after stop = %s", info.State)
	}
	for i := 1; i <= 5; i++ {
		must(t, b.Publish(context.Background(), topic, message.NewMessage("", []byte(fmt.Sprint(i)))))
	}
	s.waitFor(t, "the running consumer to handle all six", func() (bool, string) { return other.distinct() == 6, fmt.Sprint(other.distinct()) })
	time.Sleep(200 * time.Millisecond)
	if n := stopped.distinct(); n != 1 {
		t.Fatalf("stopped consumer handled %d messages, want 1", n)
	}
	must(t, b.StopConsumer(ctx, "pausable")) // stopping twice is fine
	must(t, b.StartConsumer(ctx, "pausable"))
	if s.opts.NoRetention {
		return
	}
	s.waitFor(t, "the restarted consumer to catch up", func() (bool, string) { return stopped.distinct() == 6, fmt.Sprint(stopped.distinct()) })
	if err := b.StopConsumer(ctx, "nobody"); !errors.Is(err, control.ErrUnknownConsumer) {
		t.Fatalf("stop unknown consumer: %v", err)
	}
	// Stopping every consumer keeps the bus running.
	must(t, b.StopConsumer(ctx, "pausable"))
	must(t, b.StopConsumer(ctx, "steady"))
	must(t, b.StartConsumer(ctx, "steady"))
	must(t, b.Publish(context.Background(), topic, message.NewMessage("", []byte("7"))))
	s.waitFor(t, "a consumer restarted after all were stopped", func() (bool, string) { return other.distinct() == 7, fmt.Sprint(other.distinct()) })
}

func (s *suite) testShutdown(t *testing.T) {
	b := s.newBus(t, nil)
	topic := Topic(t, "shutdown")
	var started, done counter
	release := make(chan struct{})
	must(t, b.Handle("slow", topic, func(ctx context.Context, msg *message.Message) error {
		started.inc(msg.UUID)
		<-release
		time.Sleep(20 * time.Millisecond)
		done.inc(msg.UUID)
		return nil
	}))
	s.start(t, b)
	const n = 20
	for i := 0; i < n; i++ {
		must(t, b.Publish(context.Background(), topic, message.NewMessage("", []byte(fmt.Sprint(i)))))
	}
	// Close while deliveries are in flight (a consumer group may take a while to get its
	// partitions).
	s.waitFor(t, "a delivery in flight", func() (bool, string) { return started.distinct() > 0, fmt.Sprint(started.distinct()) })
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	time.Sleep(50 * time.Millisecond)
	close(release)
	select {
	case err := <-closed:
		must(t, err)
	case <-time.After(s.opts.Timeout):
		t.Fatal("Close did not return")
	}
	if err := b.Publish(context.Background(), topic, message.NewMessage("", nil)); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("publish after close: %v, want ErrClosed", err)
	}
	// Every handler run that finished (and so was acked) has its row.
	cfg := s.opts.Config(t)
	if cfg.EventStore != nil {
		return
	}
	store, err := modelevent.Open(context.Background(), b.Config().Store.Driver, b.Config().Store.DSN)
	must(t, err)
	defer store.Close()
	got := rows(t, store, modelevent.Filter{Topic: topic, Direction: modelevent.Consumed, Statuses: []modelevent.Status{modelevent.StatusSucceeded}})
	if len(got) != done.distinct() || done.distinct() == 0 {
		t.Fatalf("%d handler runs finished but %d rows succeeded", done.distinct(), len(got))
	}
}

func (s *suite) testBuffered(t *testing.T) {
	b := s.newBus(t, func(c *bus.Config) { c.Record.Mode = middleware.RecordBuffered })
	topic := Topic(t, "buffered")
	var changes atomic.Int64
	b.OnChange(func(ctx context.Context, c modelevent.Change) { changes.Add(1) })
	must(t, b.Handle("fast", topic, func(ctx context.Context, msg *message.Message) error { return nil }))
	s.start(t, b)
	const n = 50
	for i := 0; i < n; i++ {
		must(t, b.Publish(context.Background(), topic, message.NewMessage("", []byte(fmt.Sprint(i)))))
	}
	s.waitFor(t, "buffered rows to be written", func() (bool, string) {
		got := rows(t, b.Store(), modelevent.Filter{Topic: topic})
		return len(got) == 2*n, statusText(countStatus(got))
	})
	if changes.Load() < 2*n {
		t.Fatalf("listeners saw %d changes, want ≥ %d", changes.Load(), 2*n)
	}
}
