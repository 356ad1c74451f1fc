package bus_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/backends/memory"
	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/bustest"
	"github.com/go-eventbus/eventbus/control"
	"github.com/go-eventbus/eventbus/modelevent"
)

// TestPublishDoesNotWaitForASlowSubscribe: while a backend takes its time to create a
// consumer's subscriber (NATS dials one connection per subscriber), Publish, Consumers
// and the other consumers go on; the new consumer runs once its subscriber is there.
func TestPublishDoesNotWaitForASlowSubscribe(t *testing.T) {
	var shut, late atomic.Bool
	backend := &watchedBackend{Backend: memory.New(memory.Config{}, watermill.NopLogger{}), shut: &shut, late: &late}
	t.Cleanup(func() { backend.Close() })
	b := newTestBus(t, bus.Config{
		Broker: backend,
		Store:  bus.StoreConfig{Driver: "sqlite", DSN: "file:" + filepath.Join(t.TempDir(), "events.db")},
	})
	var seen atomic.Int64
	count := func(ctx context.Context, msg *message.Message) error { seen.Add(1); return nil }
	if err := b.Handle("fast", "fast", count); err != nil {
		t.Fatal(err)
	}
	runBus(t, b)

	slow := make(chan struct{})
	backend.subscribe, backend.entered = slow, make(chan struct{}) // the next Subscriber waits until slow is closed
	handled := make(chan error, 1)
	go func() { handled <- b.Handle("slow", "slow", count) }()
	select { // Handle is inside the backend
	case <-backend.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("Handle did not ask the backend for a subscriber")
	}

	done := make(chan error, 1)
	go func() {
		if err := b.Publish(context.Background(), "fast", bus.NewMessage([]byte("x"))); err != nil {
			done <- err
			return
		}
		info, err := b.Consumer("slow")
		if err == nil && info.State != control.Pending {
			err = fmt.Errorf("consumer being subscribed is %s, want pending", info.State)
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		close(slow)
		t.Fatal("Publish or Consumer waited for another consumer's subscriber")
	}
	bustest.WaitUntil(t, 10*time.Second, "the fast consumer handled its message", func() bool { return seen.Load() == 1 })

	close(slow)
	if err := <-handled; err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(context.Background(), "slow", bus.NewMessage([]byte("y"))); err != nil {
		t.Fatal(err)
	}
	bustest.WaitRows(t, 10*time.Second, "the slow consumer handled its message", b.Store(),
		modelevent.Filter{Handler: "slow"}, bustest.OneRowIn(modelevent.StatusSucceeded))
}
