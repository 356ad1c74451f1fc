package bus_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/control"
	"github.com/go-eventbus/eventbus/middleware"
	"github.com/go-eventbus/eventbus/modelevent"
)

func newTestBus(t *testing.T, cfg bus.Config) *bus.Bus {
	t.Helper()
	if cfg.Store.DSN == "" {
		cfg.Store = bus.StoreConfig{Driver: "sqlite", DSN: "file:" + filepath.Join(t.TempDir(), "events.db")}
	}
	b, err := bus.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func runBus(t *testing.T, b *bus.Bus) {
	t.Helper()
	go func() { _ = b.Run(context.Background()) }()
	select {
	case <-b.Running():
	case <-time.After(10 * time.Second):
		t.Fatal("bus did not start")
	}
}

func waitRows(t *testing.T, b *bus.Bus, f modelevent.Filter, n int) []modelevent.ModelEvent {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, err := b.Store().List(context.Background(), f, modelevent.ListOptions{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Events) >= n {
			return p.Events
		}
		if time.Now().After(deadline) {
			t.Fatalf("want %d rows matching %+v, have %d", n, f, len(p.Events))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPublishRefusesHugePayload(t *testing.T) {
	b := newTestBus(t, bus.Config{MaxPayloadBytes: 1024})
	err := b.Publish(context.Background(), "t", message.NewMessage("", make([]byte, 2048)))
	if !errors.Is(err, bus.ErrPayloadTooLarge) || !strings.Contains(err.Error(), "payload is 2048 bytes, over max_payload_bytes 1024") {
		t.Fatalf("err = %v", err)
	}
	if st, _ := b.Store().Stats(context.Background(), modelevent.Filter{}); st.Total != 0 {
		t.Fatalf("a refused message was recorded: %+v", st)
	}
}

func TestMalformedPayloadIsPoisonedWithoutRetries(t *testing.T) {
	b := newTestBus(t, bus.Config{})
	calls := 0
	type Order struct{ ID int }
	if err := bus.HandleModel(b, "orders", "orders", func(ctx context.Context, o Order) error { calls++; return nil }); err != nil {
		t.Fatal(err)
	}
	runBus(t, b)
	if err := b.Publish(context.Background(), "orders", message.NewMessage("", []byte("{not json"))); err != nil {
		t.Fatal(err)
	}
	rows := waitRows(t, b, modelevent.Filter{Direction: modelevent.Consumed, Statuses: []modelevent.Status{modelevent.StatusPoisoned}}, 1)
	if rows[0].Attempts != 1 || !strings.Contains(rows[0].LastError, "decode bus_test.Order from message") || calls != 0 {
		t.Fatalf("row = %+v, calls = %d", rows[0], calls)
	}
}

func TestHandleRejectsBadInput(t *testing.T) {
	b := newTestBus(t, bus.Config{})
	ok := func(context.Context, *message.Message) error { return nil }
	if err := b.Handle("a", "t", ok); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, topic string
		fn          bus.HandlerFunc
		want        string
	}{
		{"a", "t", ok, `consumer "a" already registered`},
		{"", "t", ok, "consumer name must be 1 to 191 characters"},
		{"b", "", ok, "empty topic"},
		{"c", "t", nil, "nil handler"},
	} {
		if err := b.Handle(c.name, c.topic, c.fn); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Handle(%q, %q): err = %v, want %q", c.name, c.topic, err, c.want)
		}
	}
}

func TestCorrelationFlowsThroughHandlers(t *testing.T) {
	b := newTestBus(t, bus.Config{})
	if err := b.Handle("step1", "first", func(ctx context.Context, msg *message.Message) error {
		return b.Publish(ctx, "second", message.NewMessage("", []byte("next")))
	}); err != nil {
		t.Fatal(err)
	}
	if err := b.Handle("step2", "second", func(ctx context.Context, msg *message.Message) error { return nil }); err != nil {
		t.Fatal(err)
	}
	runBus(t, b)
	first := message.NewMessage("", []byte("start"))
	if err := b.Publish(context.Background(), "first", first); err != nil {
		t.Fatal(err)
	}
	rows := waitRows(t, b, modelevent.Filter{CorrelationID: first.UUID}, 4)
	if len(rows) != 4 {
		t.Fatalf("rows of the flow = %d, want 4 (2 produced, 2 consumed)", len(rows))
	}
}

func TestConsumersAddedWhileRunning(t *testing.T) {
	b := newTestBus(t, bus.Config{Retry: middleware.RetryConfig{MaxRetries: -1}})
	runBus(t, b)
	done := make(chan struct{}, 1)
	if err := b.Handle("late", "late.topic", func(ctx context.Context, msg *message.Message) error { done <- struct{}{}; return nil }); err != nil {
		t.Fatal(err)
	}
	if info, _ := b.Consumer("late"); info.State != control.Running {
		t.Fatalf("state = %s", info.State)
	}
	if err := b.Publish(context.Background(), "late.topic", message.NewMessage("", nil)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("late consumer got nothing")
	}
	waitRows(t, b, modelevent.Filter{Handler: "late", Statuses: []modelevent.Status{modelevent.StatusSucceeded}}, 1)
	// The count follows the ack, which follows the row: wait for it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		infos := b.Consumers()
		if len(infos) == 1 && infos[0].Processed == 1 && infos[0].Failed == 0 && infos[0].InFlight == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumers = %+v", infos)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCloseAbandonsRetryWaits: Close does not wait out a retry backoff; the message is
// nacked (not poisoned) and its row stays retrying.
func TestCloseAbandonsRetryWaits(t *testing.T) {
	dsn := "file:" + filepath.Join(t.TempDir(), "events.db")
	b := newTestBus(t, bus.Config{
		Store: bus.StoreConfig{Driver: "sqlite", DSN: dsn},
		Retry: middleware.RetryConfig{MaxRetries: 3, InitialInterval: time.Minute, MaxInterval: time.Minute},
	})
	if err := b.Handle("stubborn", "t", func(ctx context.Context, msg *message.Message) error { return errors.New("no") }); err != nil {
		t.Fatal(err)
	}
	runBus(t, b)
	if err := b.Publish(context.Background(), "t", message.NewMessage("", []byte("x"))); err != nil {
		t.Fatal(err)
	}
	waitRows(t, b, modelevent.Filter{Statuses: []modelevent.Status{modelevent.StatusRetrying}}, 1)
	start := time.Now()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("Close took %v: it waited out the retry backoff", d)
	}
	store, err := modelevent.Open(context.Background(), "sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	st, _ := store.Stats(context.Background(), modelevent.Filter{Direction: modelevent.Consumed})
	if st.ByStatus[modelevent.StatusRetrying] != 1 || st.Total != 1 {
		t.Fatalf("after close: %v", st.ByStatus)
	}
}

// TestUndecodableMessageIsPoisoned: a backend marks a message it could not decode, and
// the bus poisons it with the reason instead of running the consumer.
func TestUndecodableMessageIsPoisoned(t *testing.T) {
	b := newTestBus(t, bus.Config{})
	ran := false
	if err := b.Handle("strict", "avro", func(ctx context.Context, msg *message.Message) error { ran = true; return nil }); err != nil {
		t.Fatal(err)
	}
	runBus(t, b)
	msg := message.NewMessage("", []byte{0, 0, 0, 0, 7, 1})
	msg.Metadata.Set(modelevent.MetadataDecodeError, "schema 7: field total: want double")
	if err := b.Publish(context.Background(), "avro", msg); err != nil {
		t.Fatal(err)
	}
	rows := waitRows(t, b, modelevent.Filter{Statuses: []modelevent.Status{modelevent.StatusPoisoned}}, 1)
	if ran || rows[0].Attempts != 1 || !strings.Contains(rows[0].LastError, "field total: want double") {
		t.Fatalf("ran=%v row=%+v", ran, rows[0])
	}
}

// TestPublishWithDoneContextSendsNothing: a cancelled context is refused before the
// broker or the store sees the message.
func TestPublishWithDoneContextSendsNothing(t *testing.T) {
	b := newTestBus(t, bus.Config{})
	var handled atomic.Int64
	if err := b.Handle("h", "orders", func(context.Context, *message.Message) error { handled.Add(1); return nil }); err != nil {
		t.Fatal(err)
	}
	runBus(t, b)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Publish(ctx, "orders", bus.NewMessage([]byte("x"))); !errors.Is(err, context.Canceled) {
		t.Fatalf("Publish with a cancelled context: %v, want context.Canceled", err)
	}
	// A message published after it is the first the consumer sees.
	if err := b.Publish(context.Background(), "orders", bus.NewMessage([]byte("y"))); err != nil {
		t.Fatal(err)
	}
	rows := waitRows(t, b, modelevent.Filter{Direction: modelevent.Consumed}, 1)
	if len(rows) != 1 || string(rows[0].Payload) != "y" || handled.Load() != 1 {
		t.Fatalf("consumed rows %d (payload %q), handler runs %d: the refused message was sent", len(rows), rows[0].Payload, handled.Load())
	}
	if p, err := b.Store().List(context.Background(), modelevent.Filter{Direction: modelevent.Produced}, modelevent.ListOptions{}); err != nil || len(p.Events) != 1 {
		t.Fatalf("produced rows: %d (%v), want only the one sent", len(p.Events), err)
	}
}
