package sqlbackend_test

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/bustest"
	"github.com/go-eventbus/eventbus/internal/tcpproxy"
	"github.com/go-eventbus/eventbus/internal/testenv"
	"github.com/go-eventbus/eventbus/modelevent"
)

// TestFaultPostgres cuts every connection between the backend and PostgreSQL while
// messages flow, refuses new ones for a while, and restores them. Publishing fails
// while the database is away (the caller retries the same message), then resumes;
// consumption resumes; every message ends with exactly one produced row (published) and
// one consumed row (succeeded), redeliveries counted as attempts, none lost.
func TestFaultPostgres(t *testing.T) {
	t.Parallel()
	dsn := testenv.FreshPostgres(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := tcpproxy.Start(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	u.Host = proxy.Addr()

	b, err := bus.New(context.Background(), bus.Config{
		Backend: "sql",
		BackendSettings: settings("postgres", u.String(),
			"connect_timeout", "1s", "retry_interval", "50ms", "batch_size", 10),
		Store:           bus.StoreConfig{Driver: "sqlite", DSN: "file:" + filepath.Join(t.TempDir(), "events.db")},
		ShutdownTimeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	topic := "fault." + isolatedName()
	var mu sync.Mutex
	handled := map[string]int{}
	if err := b.Handle("survivor", topic, func(ctx context.Context, msg *message.Message) error {
		mu.Lock()
		handled[msg.UUID]++
		mu.Unlock()
		time.Sleep(time.Millisecond)
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
	var published, failures atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < n; i++ {
			msg := message.NewMessage(fmt.Sprintf("fault-%04d-%s", i, topic[len(topic)-8:]), []byte(fmt.Sprint(i)))
			for {
				err := b.Publish(context.Background(), topic, msg)
				if err == nil {
					break
				}
				failures.Add(1)
				time.Sleep(20 * time.Millisecond)
			}
			published.Add(1)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	bustest.WaitUntil(t, 20*time.Second, "a third of the messages published", func() bool { return published.Load() >= n/3 })
	proxy.Cut()
	time.Sleep(time.Second)
	proxy.Restore()
	select {
	case <-done:
	case <-time.After(40 * time.Second):
		t.Fatalf("publishing did not resume: %d of %d published", published.Load(), n)
	}
	if failures.Load() == 0 {
		t.Fatal("no publish failed while the database was cut: the fault did not happen")
	}

	store := b.Store()
	var consumed []modelevent.ModelEvent
	bustest.WaitUntil(t, 40*time.Second, "every message consumed and recorded", func() bool {
		consumed = bustest.Rows(t, store, modelevent.Filter{Topic: topic, Direction: modelevent.Consumed, Statuses: []modelevent.Status{modelevent.StatusSucceeded}})
		return len(consumed) == n
	})
	produced := bustest.Rows(t, store, modelevent.Filter{Topic: topic, Direction: modelevent.Produced})
	if len(produced) != n {
		t.Fatalf("produced rows = %d, want %d", len(produced), n)
	}
	for _, p := range produced {
		if p.Status != modelevent.StatusPublished {
			t.Fatalf("produced row %s is %s after the retries", p.MessageUUID, p.Status)
		}
	}
	all := bustest.Rows(t, store, modelevent.Filter{Topic: topic, Direction: modelevent.Consumed})
	if len(all) != n {
		t.Fatalf("consumed rows = %d, want %d (one per message)", len(all), n)
	}
	rows := map[string]modelevent.ModelEvent{}
	redelivered := 0
	for _, r := range all {
		rows[r.MessageUUID] = r
		if r.Attempts > 1 {
			redelivered++
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(handled) != n {
		t.Fatalf("handler saw %d distinct messages, want %d", len(handled), n)
	}
	for id, times := range handled {
		r, ok := rows[id]
		if !ok {
			t.Fatalf("message %s was handled but has no consumed row", id)
		}
		if r.Attempts < times {
			t.Fatalf("message %s handled %d times but its row counts %d attempts", id, times, r.Attempts)
		}
	}
	t.Logf("publish failures while cut: %d; messages redelivered: %d", failures.Load(), redelivered)
}
