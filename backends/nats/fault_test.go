package nats

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/modelevent"
)

// TestFaultEmbeddedRestart shuts the embedded server down while messages are
// published and consumed, and starts it again on the same port and store dir. The
// publisher's errors while it is down go back to the caller, who retries the same
// message; the connections reconnect; consumption resumes; every message has a
// succeeded consumed row and every acked message had its row first (durable mode).
func TestFaultEmbeddedRestart(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "events.db")
	b, err := bus.New(context.Background(), bus.Config{
		Backend: "nats",
		BackendSettings: map[string]any{
			"embedded": true, "store_dir": t.TempDir(),
			"reconnect_wait": "100ms", "ack_wait": "2s",
		},
		Store: bus.StoreConfig{Driver: "sqlite", DSN: "file:" + dbPath},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	backend := b.Backend().(*Backend)
	topic := "fault." + watermill.NewShortUUID()

	var mu sync.Mutex
	handled := map[string]int{}
	if err := b.Handle("fault-consumer", topic, func(ctx context.Context, msg *message.Message) error {
		mu.Lock()
		handled[msg.UUID]++
		mu.Unlock()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	go func() { _ = b.Run(context.Background()) }()
	select {
	case <-b.Running():
	case <-time.After(20 * time.Second):
		t.Fatal("bus did not start")
	}

	const n = 300
	published := make([]string, 0, n)
	var failures int
	restarted := make(chan struct{})
	for i := 0; i < n; i++ {
		if i == n/3 {
			go func() {
				backend.embedded.Shutdown()
				time.Sleep(time.Second)
				if err := backend.embedded.Start(); err != nil {
					t.Errorf("restart: %v", err)
				}
				close(restarted)
			}()
		}
		msg := message.NewMessage(watermill.NewUUID(), []byte(fmt.Sprint(i)))
		deadline := time.Now().Add(30 * time.Second)
		for {
			err := b.Publish(context.Background(), topic, msg)
			if err == nil {
				break
			}
			failures++
			if time.Now().After(deadline) {
				t.Fatalf("message %d not published within 30s: %v", i, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		published = append(published, msg.UUID)
	}
	<-restarted
	t.Logf("%d publish attempts failed while the server was away", failures)

	store := b.Store()
	deadline := time.Now().Add(45 * time.Second)
	for {
		got := consumedRows(t, store, topic)
		done := 0
		for _, id := range published {
			if r, ok := got[id]; ok && r.Status == modelevent.StatusSucceeded {
				done++
			}
		}
		if done == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages have a succeeded consumed row", done, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Everything is acked: nothing pending for the consumer.
	waitBacklog(t, backend, "fault-consumer", topic, 0)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	// After Close every row is flushed: one consumed row per published message (a
	// redelivery adds attempts, never rows), and every handled message has its row.
	s, err := modelevent.Open(context.Background(), "sqlite", "file:"+dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := consumedRows(t, s, topic)
	if len(got) != n {
		t.Fatalf("%d consumed rows, want %d", len(got), n)
	}
	redelivered := 0
	for id := range handled {
		r, ok := got[id]
		if !ok || r.Status != modelevent.StatusSucceeded {
			t.Fatalf("message %s handled but its row is %+v", id, r)
		}
		if r.Attempts > 1 {
			redelivered++
		}
	}
	if len(handled) != n {
		t.Fatalf("handler saw %d distinct messages, want %d", len(handled), n)
	}
	t.Logf("%d messages were delivered more than once", redelivered)
}

// consumedRows returns the consumed rows of topic by message UUID.
func consumedRows(t *testing.T, s modelevent.Store, topic string) map[string]modelevent.ModelEvent {
	t.Helper()
	out := map[string]modelevent.ModelEvent{}
	opts := modelevent.ListOptions{Limit: 1000}
	for {
		p, err := s.List(context.Background(), modelevent.Filter{Topic: topic, Direction: modelevent.Consumed}, opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Events {
			if _, dup := out[e.MessageUUID]; dup {
				t.Fatalf("two consumed rows for message %s", e.MessageUUID)
			}
			out[e.MessageUUID] = e
		}
		if p.NextCursor == "" {
			return out
		}
		opts.Cursor = p.NextCursor
	}
}
