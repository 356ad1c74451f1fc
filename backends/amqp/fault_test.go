package amqp

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/internal/tcpproxy"
	"github.com/go-eventbus/eventbus/middleware"
	"github.com/go-eventbus/eventbus/modelevent"
)

// viaProxy returns a proxy to the broker of raw and raw's URL pointing at the proxy.
func viaProxy(t *testing.T, raw string) (*tcpproxy.Proxy, string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	target := u.Host
	if u.Port() == "" {
		target += ":5672"
	}
	p, err := tcpproxy.Start(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	u.Host = p.Addr()
	return p, u.String()
}

// TestFaultBrokerConnectionCut cuts every connection between the bus and RabbitMQ while
// messages flow, refuses new ones for a while, then lets them through again. Publishing
// fails while the broker is away (the test, as a caller would, retries with the same
// message UUID) and resumes; consumption resumes; every published message ends with
// one succeeded consumed row (redeliveries only raise its attempts) and nothing the
// handler acked lacks its row.
func TestFaultBrokerConnectionCut(t *testing.T) {
	url := brokerURL(t)
	for _, c := range []int{1, 4} {
		t.Run(fmt.Sprintf("concurrency=%d", c), func(t *testing.T) { faultCut(t, url, c) })
	}
}

func faultCut(t *testing.T, brokerURL string, concurrency int) {
	proxy, proxied := viaProxy(t, brokerURL)
	topic := testTopic("fault")
	b, err := bus.New(context.Background(), bus.Config{
		Backend: Name,
		BackendSettings: map[string]any{
			"url":             proxied,
			"connect_timeout": "2s",
			"concurrency":     concurrency,
			"reconnect":       map[string]any{"initial_interval": "50ms", "multiplier": 1.5, "max_interval": "300ms"},
		},
		Store:           bus.StoreConfig{Driver: "sqlite", DSN: "file:" + filepath.Join(t.TempDir(), "events.db")},
		Retry:           middleware.RetryConfig{MaxRetries: 3, InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond, Multiplier: 2},
		PoisonTopic:     testTopic("poison"),
		ShutdownTimeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var handled sync.Map // message UUID → times handled
	var handledTotal atomic.Int64
	if err := b.Handle("ledger", topic, func(ctx context.Context, msg *message.Message) error {
		n, _ := handled.LoadOrStore(msg.UUID, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		handledTotal.Add(1)
		time.Sleep(time.Millisecond)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- b.Run(context.Background()) }()
	select {
	case <-b.Running():
	case err := <-runErr:
		t.Fatal(err)
	case <-time.After(20 * time.Second):
		t.Fatal("bus did not start")
	}

	const n = 400
	var published, publishErrors atomic.Int64
	var uuids sync.Map
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		for i := 0; i < n; i++ {
			id := watermill.NewUUID()
			uuids.Store(id, true)
			for attempt := 0; ; attempt++ {
				err := b.Publish(context.Background(), topic, message.NewMessage(id, []byte(fmt.Sprint(i))))
				if err == nil {
					break
				}
				publishErrors.Add(1)
				if attempt > 400 {
					t.Errorf("message %d: still failing after %d attempts: %v", i, attempt, err)
					return
				}
				time.Sleep(25 * time.Millisecond)
			}
			published.Add(1)
			time.Sleep(2 * time.Millisecond)
		}
	}()

	waitUntil(t, "a third of the messages published", func() bool { return published.Load() >= n/3 })
	proxy.Cut()
	cutAt := published.Load()
	handledAtCut := handledTotal.Load()
	time.Sleep(1500 * time.Millisecond)
	if got := published.Load(); got > cutAt+1 {
		t.Errorf("%d messages published while the broker was unreachable", got-cutAt)
	}
	proxy.Restore()
	<-pubDone
	if publishErrors.Load() == 0 {
		t.Fatal("no publish failed: the cut was not felt")
	}
	waitUntil(t, "every message handled", func() bool {
		c := 0
		handled.Range(func(any, any) bool { c++; return true })
		return c == n
	})
	if handledTotal.Load() <= handledAtCut {
		t.Fatal("consumption did not resume")
	}

	store := b.Store()
	var consumed []modelevent.ModelEvent
	waitUntil(t, "a succeeded row for every message", func() bool {
		consumed = listAll(t, store, modelevent.Filter{Topic: topic, Direction: modelevent.Consumed, Statuses: []modelevent.Status{modelevent.StatusSucceeded}})
		return len(consumed) == n
	})
	redelivered := 0
	for _, r := range consumed {
		if _, ok := uuids.Load(r.MessageUUID); !ok {
			t.Fatalf("row for a message never published: %+v", r)
		}
		if r.Attempts > 1 {
			redelivered++
		}
	}
	all := listAll(t, store, modelevent.Filter{Topic: topic, Direction: modelevent.Consumed})
	if len(all) != n {
		t.Fatalf("%d consumed rows, want %d", len(all), n)
	}
	produced := listAll(t, store, modelevent.Filter{Topic: topic, Direction: modelevent.Produced})
	okProduced := 0
	for _, r := range produced {
		if r.Status == modelevent.StatusPublished {
			okProduced++
		}
	}
	if okProduced != n {
		t.Fatalf("%d produced rows published (of %d rows), want %d", okProduced, len(produced), n)
	}
	// Everything the handler acked has its row: every handled UUID is in consumed.
	rowOf := map[string]bool{}
	for _, r := range consumed {
		rowOf[r.MessageUUID] = true
	}
	handled.Range(func(k, _ any) bool {
		if !rowOf[k.(string)] {
			t.Errorf("message %s handled without a row", k)
		}
		return true
	})
	t.Logf("published %d with %d publish errors during the cut; handled %d times; %d rows redelivered (attempts > 1)",
		n, publishErrors.Load(), handledTotal.Load(), redelivered)
	if err := b.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func listAll(t *testing.T, store modelevent.Store, f modelevent.Filter) []modelevent.ModelEvent {
	t.Helper()
	var out []modelevent.ModelEvent
	opts := modelevent.ListOptions{Limit: 1000}
	for {
		p, err := store.List(context.Background(), f, opts)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p.Events...)
		if p.NextCursor == "" {
			return out
		}
		opts.Cursor = p.NextCursor
	}
}
