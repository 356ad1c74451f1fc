package bus_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/bustest"
	"github.com/go-eventbus/eventbus/control"
	"github.com/go-eventbus/eventbus/middleware"
	"github.com/go-eventbus/eventbus/modelevent"
)

// TestOperatorActsOnTheSchedule: through the Inspector (the console's and the CLI's
// API) a delayed publish is listed, rescheduled to now (and published) or cancelled
// (and never sent); a scheduled retry is retried now or cancelled (failed).
func TestOperatorActsOnTheSchedule(t *testing.T) {
	b := newTestBus(t, bus.Config{
		Retry:     middleware.RetryConfig{MaxRetries: 3, InitialInterval: time.Hour, MaxInterval: time.Hour, Mode: middleware.RetryScheduled},
		Scheduler: bus.SchedulerConfig{PollInterval: 20 * time.Millisecond},
	})
	var delivered, failures atomic.Int64
	if err := b.Handle("sink", "later", func(context.Context, *message.Message) error { delivered.Add(1); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := b.Handle("flaky", "flaky", func(context.Context, *message.Message) error {
		if failures.Add(1) == 1 {
			return errors.New("first attempt fails")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	runBus(t, b)
	ctx := context.Background()
	insp := b.Inspector()
	ids, err := b.PublishIn(ctx, time.Hour, "later", message.NewMessage("", []byte("a")), message.NewMessage("", []byte("b")))
	if err != nil {
		t.Fatal(err)
	}
	list, err := insp.Scheduled(ctx, modelevent.SchedulePublish, 10)
	if err != nil || len(list) != 2 || list[0].Event.Status != modelevent.StatusScheduled {
		t.Fatalf("scheduled publishes: %+v, %v", list, err)
	}
	if err := insp.RescheduleScheduled(ctx, ids[0], time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := insp.CancelScheduled(ctx, ids[1]); err != nil {
		t.Fatal(err)
	}
	bustest.WaitUntil(t, 10*time.Second, "the rescheduled message delivered", func() bool { return delivered.Load() == 1 })
	// The produced row is marked published after the broker took the message, which
	// the consumer may have handled already.
	bustest.WaitUntil(t, 10*time.Second, "the rescheduled row published", func() bool {
		ev, err := b.Store().Get(ctx, ids[0])
		return err == nil && ev.Status == modelevent.StatusPublished
	})
	if ev, err := b.Store().Get(ctx, ids[1]); err != nil || ev.Status != modelevent.StatusCancelled {
		t.Fatalf("cancelled row: %s (%v)", ev.Status, err)
	}
	if err := insp.CancelScheduled(ctx, ids[1]); !errors.Is(err, modelevent.ErrNotScheduled) {
		t.Fatalf("cancel twice: %v", err)
	}

	for _, action := range []string{"retry-now", "cancel"} {
		msg := message.NewMessage("", []byte(action))
		failures.Store(0)
		if err := b.Publish(ctx, "flaky", msg); err != nil {
			t.Fatal(err)
		}
		rows := bustest.WaitRows(t, 10*time.Second, "the retry scheduled an hour ahead", b.Store(),
			modelevent.Filter{MessageUUID: msg.UUID, Handler: "flaky"}, bustest.OneRowIn(modelevent.StatusRetrying))
		// The row shows retrying as soon as the attempt failed; its entry follows.
		var retries []control.ScheduledEvent
		bustest.WaitUntil(t, 10*time.Second, "the retry's schedule entry", func() bool {
			retries, err = insp.Scheduled(ctx, modelevent.ScheduleRetry, 10)
			return err != nil || len(retries) > 0
		})
		if err != nil || len(retries) != 1 || retries[0].Event.ID != rows[0].ID || time.Until(retries[0].NextAttemptAt) < 50*time.Minute {
			t.Fatalf("scheduled retries: %+v, %v", retries, err)
		}
		want := modelevent.StatusSucceeded
		if action == "cancel" {
			want = modelevent.StatusFailed
			err = insp.CancelScheduled(ctx, rows[0].ID)
		} else {
			err = insp.RetryNow(ctx, rows[0].ID)
		}
		if err != nil {
			t.Fatal(err)
		}
		bustest.WaitRows(t, 10*time.Second, "the row after "+action, b.Store(),
			modelevent.Filter{MessageUUID: msg.UUID, Handler: "flaky"}, bustest.OneRowIn(want))
	}
}

// TestStoppedConsumerRetriesWait: a due scheduled retry of a stopped consumer is not
// run (no process runs the consumer) until the consumer starts again.
func TestStoppedConsumerRetriesWait(t *testing.T) {
	b := newTestBus(t, bus.Config{
		Retry:     middleware.RetryConfig{MaxRetries: 3, InitialInterval: 100 * time.Millisecond, Mode: middleware.RetryScheduled},
		Scheduler: bus.SchedulerConfig{PollInterval: 10 * time.Millisecond},
	})
	var runs atomic.Int64
	if err := b.Handle("flaky", "flaky", failsOnce(&runs)); err != nil {
		t.Fatal(err)
	}
	runBus(t, b)
	ctx := context.Background()
	msg := message.NewMessage("", []byte(`{}`))
	if err := b.Publish(ctx, "flaky", msg); err != nil {
		t.Fatal(err)
	}
	bustest.WaitRows(t, 10*time.Second, "the retry scheduled", b.Store(), modelevent.Filter{MessageUUID: msg.UUID, Handler: "flaky"}, bustest.OneRowIn(modelevent.StatusRetrying))
	if err := b.StopConsumer(ctx, "flaky"); err != nil {
		t.Fatal(err)
	}
	s := b.Store().(*modelevent.SQLStore)
	var e modelevent.Scheduled
	bustest.WaitUntil(t, 10*time.Second, "the retry's schedule entry", func() bool {
		var err error
		e, err = s.GetScheduled(ctx, msg.UUID, "flaky")
		return err == nil
	})
	// Past the due time by many polls, the retry still waits.
	bustest.WaitUntil(t, 10*time.Second, "the retry's due time 20 polls behind", func() bool { return time.Since(e.NextAttemptAt) > 200*time.Millisecond })
	if n := runs.Load(); n != 1 {
		t.Fatalf("handler ran %d times while the consumer was stopped, want 1", n)
	}
	if e2, err := s.GetScheduled(ctx, msg.UUID, "flaky"); err != nil || e2.ClaimedBy != "" {
		t.Fatalf("entry while stopped: %+v, %v", e2, err)
	}
	if err := b.StartConsumer(ctx, "flaky"); err != nil {
		t.Fatal(err)
	}
	bustest.WaitRows(t, 10*time.Second, "the retry run once the consumer runs", b.Store(), modelevent.Filter{MessageUUID: msg.UUID, Handler: "flaky"}, bustest.OneRowIn(modelevent.StatusSucceeded))
}

// TestScheduledRetryStaysRetrying: with retry.mode scheduled, the stored changes of a
// message that fails twice and then succeeds (seen by an OnChange listener, which the
// recorder calls after each change is stored) are retrying, retrying, succeeded: a
// failed attempt whose retry is scheduled is one write, straight to retrying, and the
// console never shows it failed. A message failing past the limit is recorded failed,
// then poisoned.
func TestScheduledRetryStaysRetrying(t *testing.T) {
	b := newTestBus(t, bus.Config{
		Retry:       middleware.RetryConfig{MaxRetries: 2, InitialInterval: 20 * time.Millisecond, MaxInterval: 20 * time.Millisecond, Mode: middleware.RetryScheduled},
		Scheduler:   bus.SchedulerConfig{PollInterval: 10 * time.Millisecond},
		PoisonTopic: "flaky.poison",
	})
	var mu sync.Mutex
	seen := map[string][]modelevent.Status{}
	b.OnChange(func(_ context.Context, c modelevent.Change) {
		if c.Event.Direction == modelevent.Consumed && c.Event.Handler == "flaky" {
			mu.Lock()
			seen[c.Event.MessageUUID] = append(seen[c.Event.MessageUUID], c.Event.Status)
			mu.Unlock()
		}
	})
	var runs sync.Map // message UUID → *atomic.Int64
	if err := b.Handle("flaky", "flaky", func(_ context.Context, msg *message.Message) error {
		n, _ := runs.LoadOrStore(msg.UUID, new(atomic.Int64))
		if k := n.(*atomic.Int64).Add(1); string(msg.Payload) == "always" || k <= 2 {
			return fmt.Errorf("attempt %d fails", k)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	runBus(t, b)
	ctx := context.Background()
	ok, bad := message.NewMessage("", []byte("twice")), message.NewMessage("", []byte("always"))
	for _, m := range []*message.Message{ok, bad} {
		if err := b.Publish(ctx, "flaky", m); err != nil {
			t.Fatal(err)
		}
	}
	bustest.WaitRows(t, 20*time.Second, "the flaky message succeeded", b.Store(), modelevent.Filter{MessageUUID: ok.UUID, Handler: "flaky"}, bustest.OneRowIn(modelevent.StatusSucceeded))
	bustest.WaitRows(t, 20*time.Second, "the failing message poisoned", b.Store(), modelevent.Filter{MessageUUID: bad.UUID, Handler: "flaky"}, bustest.OneRowIn(modelevent.StatusPoisoned))
	statuses := func(id string) []modelevent.Status {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen[id])
	}
	// The listener is called after the write that the row's status already shows.
	bustest.WaitUntil(t, 10*time.Second, "the last changes seen", func() bool {
		a, p := statuses(ok.UUID), statuses(bad.UUID)
		return len(a) > 0 && a[len(a)-1] == modelevent.StatusSucceeded && len(p) > 0 && p[len(p)-1] == modelevent.StatusPoisoned
	})
	got := statuses(ok.UUID)
	t.Logf("fails twice, then succeeds: %v", got)
	t.Logf("fails past the limit: %v", statuses(bad.UUID))
	// One write per attempt: two failed ones, retrying at once, then the success.
	if want := []modelevent.Status{modelevent.StatusRetrying, modelevent.StatusRetrying, modelevent.StatusSucceeded}; !slices.Equal(got, want) {
		t.Fatalf("changes of the retried message: %v, want %v", got, want)
	}
	if rows := bustest.Rows(t, b.Store(), modelevent.Filter{MessageUUID: ok.UUID, Handler: "flaky"}); rows[0].Attempts != 3 {
		t.Fatalf("attempts %d, want 3", rows[0].Attempts)
	}
}

// TestWrappedStoreKeepsSchedule: a store wrapping the SQL store (countingStore,
// capability_test.go) keeps scheduled retries, delayed publishing, the Inspector's
// schedule and idempotent consumers working: they depend on modelevent.Scheduler and
// modelevent.RunClaimer, not on *modelevent.SQLStore.
func TestWrappedStoreKeepsSchedule(t *testing.T) {
	ctx := context.Background()
	sql, err := modelevent.Open(ctx, "sqlite", "file:"+filepath.Join(t.TempDir(), "app.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sql.Close() })
	if err := sql.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	store := &countingStore{SQLStore: sql}
	b := newTestBus(t, bus.Config{
		EventStore:  store,
		Retry:       middleware.RetryConfig{MaxRetries: 3, InitialInterval: 10 * time.Millisecond, MaxInterval: 10 * time.Millisecond, Mode: middleware.RetryScheduled},
		Scheduler:   bus.SchedulerConfig{PollInterval: 10 * time.Millisecond},
		Idempotency: bus.IdempotencyConfig{Enabled: true},
	})
	var runs atomic.Int64
	if err := b.Handle("flaky", "flaky", failsOnce(&runs)); err != nil {
		t.Fatal(err)
	}
	runBus(t, b)
	msg := message.NewMessage("", []byte(`{}`))
	if _, err := b.PublishIn(ctx, 20*time.Millisecond, "flaky", msg); err != nil {
		t.Fatal(err)
	}
	bustest.WaitRows(t, 10*time.Second, "the delayed message handled after its scheduled retry", b.Store(),
		modelevent.Filter{MessageUUID: msg.UUID, Handler: "flaky"}, bustest.OneRowIn(modelevent.StatusSucceeded))
	if _, err := b.Inspector().Scheduled(ctx, "", 10); err != nil {
		t.Fatalf("the Inspector's schedule: %v", err)
	}
	// The same message again: an idempotent consumer acks it as a duplicate.
	if err := b.Publisher().Publish("flaky", message.NewMessage(msg.UUID, msg.Payload)); err != nil {
		t.Fatal(err)
	}
	bustest.WaitUntil(t, 10*time.Second, "the second delivery counted as a duplicate", func() bool {
		rows := bustest.Rows(t, b.Store(), modelevent.Filter{MessageUUID: msg.UUID, Handler: "flaky"})
		ev, err := b.Store().Get(ctx, rows[0].ID)
		return err == nil && ev.Duplicates == 1
	})
	if n := runs.Load(); n != 2 || store.writes.Load() == 0 {
		t.Fatalf("handler runs %d, want 2 (a failure, its retry); store writes %d", n, store.writes.Load())
	}
}

// TestScheduledWorkSurvivesRestart: a process that is down at the due time of its
// delayed publish and of its scheduled retry leaves both in the store; the next
// process on the store publishes the event, runs the retry, each once, and never
// before its time.
func TestScheduledWorkSurvivesRestart(t *testing.T) {
	dsn := "file:" + filepath.Join(t.TempDir(), "events.db")
	cfg := bus.Config{
		Store:     bus.StoreConfig{Driver: "sqlite", DSN: dsn},
		Retry:     middleware.RetryConfig{MaxRetries: 3, InitialInterval: 300 * time.Millisecond, MaxInterval: 300 * time.Millisecond, Mode: middleware.RetryScheduled},
		Scheduler: bus.SchedulerConfig{PollInterval: 10 * time.Millisecond},
	}
	var runs, delivered atomic.Int64
	var deliveredAt atomic.Int64
	handle := func(b *bus.Bus) {
		t.Helper()
		if err := b.Handle("flaky", "flaky", failsOnce(&runs)); err != nil {
			t.Fatal(err)
		}
		if err := b.Handle("mailer", "later", func(context.Context, *message.Message) error {
			delivered.Add(1)
			deliveredAt.Store(time.Now().UnixNano())
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	first, err := bus.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	handle(first)
	runBus(t, first)
	failing := message.NewMessage("", []byte(`{}`))
	if err := first.Publish(ctx, "flaky", failing); err != nil {
		t.Fatal(err)
	}
	bustest.WaitRows(t, 10*time.Second, "the retry scheduled", first.Store(), modelevent.Filter{MessageUUID: failing.UUID, Handler: "flaky"}, bustest.OneRowIn(modelevent.StatusRetrying))
	later := message.NewMessage("", []byte(`{}`))
	due := time.Now().Add(300 * time.Millisecond)
	if _, err := first.PublishAt(ctx, due, "later", later); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	// Down past both due times.
	bustest.WaitUntil(t, 10*time.Second, "the due times passed", func() bool { return time.Since(due) > 300*time.Millisecond })
	if n, d := runs.Load(), delivered.Load(); n != 1 || d != 0 {
		t.Fatalf("before the restart: %d handler runs, %d deliveries; want 1 and 0", n, d)
	}
	second := newTestBus(t, cfg)
	handle(second)
	runBus(t, second)
	bustest.WaitRows(t, 10*time.Second, "the retry run by the next process", second.Store(), modelevent.Filter{MessageUUID: failing.UUID, Handler: "flaky"}, bustest.OneRowIn(modelevent.StatusSucceeded))
	bustest.WaitRows(t, 10*time.Second, "the delayed event handled", second.Store(), modelevent.Filter{MessageUUID: later.UUID, Handler: "mailer"}, bustest.OneRowIn(modelevent.StatusSucceeded))
	if n, d := runs.Load(), delivered.Load(); n != 2 || d != 1 {
		t.Fatalf("after the restart: %d handler runs, %d deliveries; want 2 and 1", n, d)
	}
	if at := time.Unix(0, deliveredAt.Load()); at.Before(due) {
		t.Fatalf("the delayed event was delivered %v before its time", due.Sub(at))
	}
}

// failsOnce is a handler whose first run fails and every later one succeeds; runs
// counts its runs.
func failsOnce(runs *atomic.Int64) bus.HandlerFunc {
	return func(context.Context, *message.Message) error {
		if runs.Add(1) == 1 {
			return errors.New("first attempt fails")
		}
		return nil
	}
}

// TestShutdownCancelsScheduledRetry: a retry run from the store is a handler in flight
// like any other: when Shutdown's context ends it cancels the handler's context, the
// handler returns, and Shutdown does not report it still running.
func TestShutdownCancelsScheduledRetry(t *testing.T) {
	b := newTestBus(t, bus.Config{
		Retry:           middleware.RetryConfig{MaxRetries: 3, InitialInterval: 10 * time.Millisecond, MaxInterval: 10 * time.Millisecond, Mode: middleware.RetryScheduled},
		Scheduler:       bus.SchedulerConfig{PollInterval: 10 * time.Millisecond},
		ShutdownTimeout: time.Second,
	})
	var runs atomic.Int64
	retrying := make(chan struct{})
	observed := make(chan error, 1)
	if err := b.Handle("slow", "slow", func(ctx context.Context, msg *message.Message) error {
		if runs.Add(1) == 1 {
			return errors.New("first attempt fails")
		}
		close(retrying)
		select {
		case <-ctx.Done():
			observed <- ctx.Err()
		case <-time.After(30 * time.Second):
			observed <- errors.New("the retry's context was never cancelled")
		}
		return ctx.Err()
	}); err != nil {
		t.Fatal(err)
	}
	runBus(t, b)
	if err := b.Publish(context.Background(), "slow", bus.NewMessage([]byte(`{}`))); err != nil {
		t.Fatal(err)
	}
	select {
	case <-retrying:
	case <-time.After(10 * time.Second):
		t.Fatal("the scheduled retry did not run")
	}
	sctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := b.Shutdown(sctx)
	if got := <-observed; !errors.Is(got, context.Canceled) {
		t.Fatalf("the retry's handler saw %v, want context.Canceled", got)
	}
	if err != nil && strings.Contains(err.Error(), "still running") {
		t.Fatalf("Shutdown: %v", err)
	}
}
