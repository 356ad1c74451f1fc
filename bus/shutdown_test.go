package bus_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/backends/memory"
	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/bustest"
	"github.com/go-eventbus/eventbus/middleware"
	"github.com/go-eventbus/eventbus/modelevent"
)

// watchedBackend is the memory backend whose publisher reports a publish after shut
// (set once Shutdown returned, when the bus must not touch the backend any more).
type watchedBackend struct {
	*memory.Backend
	shut, late *atomic.Bool
	subscribe  chan struct{} // when not nil, Subscriber closes entered and waits until it is closed
	entered    chan struct{}
}

func (w watchedBackend) Publisher() message.Publisher {
	return watchedPublisher{w.Backend.Publisher(), w.shut, w.late}
}

func (w watchedBackend) Subscriber(consumer string) (message.Subscriber, error) {
	if w.subscribe != nil {
		close(w.entered)
		<-w.subscribe
	}
	return w.Backend.Subscriber(consumer)
}

type watchedPublisher struct {
	message.Publisher
	shut, late *atomic.Bool
}

func (p watchedPublisher) Publish(topic string, msgs ...*message.Message) error {
	if p.shut.Load() {
		p.late.Store(true)
	}
	return p.Publisher.Publish(topic, msgs...)
}

// watchedStore is the SQL store reporting a write after shut.
type watchedStore struct {
	*modelevent.SQLStore
	shut, late *atomic.Bool
}

func (s watchedStore) Write(ctx context.Context, changes []modelevent.Change) error {
	if s.shut.Load() {
		s.late.Store(true)
	}
	return s.SQLStore.Write(ctx, changes)
}

// TestShutdownCancelsHandlersThenFlushes: Shutdown waits for in-flight handlers until
// its context ends, then cancels their contexts; a handler that honours it returns and
// its row is stored before Shutdown returns. A handler that ignores it has its later
// Publish refused, and neither the backend nor the store is touched after Shutdown.
func TestShutdownCancelsHandlersThenFlushes(t *testing.T) {
	ctx := context.Background()
	store := migratedSQLite(t)
	var shut, lateWrite, latePublish atomic.Bool
	backend := watchedBackend{Backend: memory.New(memory.Config{}, watermill.NopLogger{}), shut: &shut, late: &latePublish}
	t.Cleanup(func() { backend.Close() })
	b, err := bus.New(ctx, bus.Config{
		Broker: backend, EventStore: watchedStore{store, &shut, &lateWrite},
		ShutdownTimeout: time.Second, // phase 2 grace: 100ms
	})
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan string, 2)
	observed := make(chan error, 1)
	politeDone := make(chan struct{})
	if err := b.Handle("polite", "orders", func(ctx context.Context, msg *message.Message) error {
		defer close(politeDone)
		started <- "polite"
		select {
		case <-ctx.Done():
			observed <- ctx.Err()
		case <-time.After(30 * time.Second):
			observed <- errors.New("the handler's context was never cancelled")
		}
		return ctx.Err()
	}); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	stubbornPublish := make(chan error, 1)
	if err := b.Handle("stubborn", "orders", func(ctx context.Context, msg *message.Message) error {
		started <- "stubborn"
		<-release // ignores ctx
		stubbornPublish <- b.Publish(context.Background(), "audit", bus.NewMessage([]byte("late")))
		return errors.New("late")
	}); err != nil {
		t.Fatal(err)
	}
	runBus(t, b)
	if err := b.Publish(ctx, "orders", bus.NewMessage([]byte("o-1"))); err != nil {
		t.Fatal(err)
	}
	<-started
	<-started

	sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	begin := time.Now()
	err = b.Shutdown(sctx)
	took := time.Since(begin)
	shut.Store(true)
	if err == nil || !strings.Contains(err.Error(), "1 handlers still running") {
		t.Fatalf("Shutdown error = %v; want it to count the handler that ignored its context", err)
	}
	if took < 300*time.Millisecond {
		t.Fatalf("Shutdown returned after %v, before its context ended", took)
	}
	select {
	case got := <-observed:
		if !errors.Is(got, context.Canceled) {
			t.Fatalf("polite handler: %v", got)
		}
	default:
		t.Fatal("Shutdown returned before the polite handler saw its context end")
	}
	select {
	case <-politeDone:
	default:
		t.Fatal("Shutdown returned while the polite handler was still running")
	}
	p, err := store.List(ctx, modelevent.Filter{Handler: "polite"}, modelevent.ListOptions{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Events) != 1 || !strings.Contains(p.Events[0].LastError, "context canceled") {
		t.Fatalf("polite handler's row after Shutdown: %+v", p.Events)
	}

	close(release)
	if err := <-stubbornPublish; !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("Publish from a handler after Shutdown: %v, want ErrClosed", err)
	}
	if err := b.Publish(ctx, "orders", bus.NewMessage([]byte("o-2"))); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("Publish after Shutdown: %v, want ErrClosed", err)
	}
	// The stubborn handler's failure goes through recording and the poison queue: both
	// must refuse it rather than reach the store or the backend.
	bustest.WaitUntil(t, 10*time.Second, "the stubborn handler returned", func() bool { return b.Consumers()[1].InFlight == 0 })
	if lateWrite.Load() || latePublish.Load() {
		t.Fatalf("after Shutdown returned: store written %v, backend published %v", lateWrite.Load(), latePublish.Load())
	}
}

// slowStore is the SQL store taking delay for every Write (honouring ctx), counting
// the writes.
type slowStore struct {
	*modelevent.SQLStore
	delay  time.Duration
	writes *atomic.Int64
}

func (s slowStore) Write(ctx context.Context, changes []modelevent.Change) error {
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return ctx.Err()
	}
	s.writes.Add(1)
	return s.SQLStore.Write(ctx, changes)
}

// TestShutdownWithoutDeadline: without a deadline in ctx, Shutdown waits for a handler
// running past ShutdownTimeout, and the final flush then gets ShutdownTimeout from
// when the handler is done, not what is left of it since Shutdown began (a tenth, the
// floor): in buffered mode, with a flush interval longer than the test, the handler's
// row is still pending at the flush, and a store write slower than a tenth of
// ShutdownTimeout stores it before Shutdown returns nil.
func TestShutdownWithoutDeadline(t *testing.T) {
	ctx := context.Background()
	store := slowStore{SQLStore: migratedSQLite(t), delay: 300 * time.Millisecond, writes: new(atomic.Int64)}
	b, err := bus.New(ctx, bus.Config{EventStore: store, ShutdownTimeout: time.Second,
		Record: bus.RecordConfig{Mode: middleware.RecordBuffered, FlushInterval: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	if err := b.Handle("slow", "orders", func(ctx context.Context, msg *message.Message) error {
		close(started)
		time.Sleep(1200 * time.Millisecond) // past ShutdownTimeout
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	runBus(t, b)
	if err := b.Publish(ctx, "orders", bus.NewMessage([]byte("o-1"))); err != nil {
		t.Fatal(err)
	}
	<-started
	if n := store.writes.Load(); n != 0 {
		t.Fatalf("%d store writes before Shutdown: the rows are not pending at the flush", n)
	}
	begin := time.Now()
	if err := b.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if took := time.Since(begin); took < time.Second {
		t.Fatalf("Shutdown returned after %v, before the handler did", took)
	}
	p, err := store.List(ctx, modelevent.Filter{Handler: "slow"}, modelevent.ListOptions{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Events) != 1 || p.Events[0].Status != modelevent.StatusSucceeded {
		t.Fatalf("the handler's row after Shutdown: %+v", p.Events)
	}
}

// migratedSQLite opens a migrated SQLite store in t's temp dir, closed at cleanup.
func migratedSQLite(t *testing.T) *modelevent.SQLStore {
	t.Helper()
	store, err := modelevent.Open(context.Background(), "sqlite", "file:"+filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return store
}
