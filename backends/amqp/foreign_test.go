package amqp

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/middleware"
	"github.com/go-eventbus/eventbus/modelevent"
)

// foreignBus starts a bus on the test broker with fn adding its handlers and returns
// it with the exchange and routing key a plain publisher uses for topic, once the
// consumer's queue is bound.
func foreignBus(t *testing.T, topic, consumer string, fn func(*bus.Bus)) (*bus.Bus, string, string) {
	t.Helper()
	url := brokerURL(t)
	b, err := bus.New(context.Background(), bus.Config{
		Backend:         Name,
		BackendSettings: map[string]any{"url": url},
		Store:           bus.StoreConfig{Driver: "sqlite", DSN: "file:" + filepath.Join(t.TempDir(), "events.db")},
		Retry:           middleware.RetryConfig{MaxRetries: -1},
		PoisonTopic:     testTopic("poison"),
		ShutdownTimeout: 20 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	fn(b)
	go func() { _ = b.Run(context.Background()) }()
	select {
	case <-b.Running():
	case <-time.After(30 * time.Second):
		t.Fatal("bus did not start")
	}
	cfg := b.Backend().(*Backend).Config()
	conn := dial(t)
	queue := cfg.queueName(topic, consumer)
	waitFor(t, 30*time.Second, "queue "+queue+" declared", func() bool {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		defer ch.Close()
		_, err = ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		return err == nil
	})
	return b, cfg.exchangeName(topic), cfg.routingKey(topic)
}

func dial(t *testing.T) *amqp091.Connection {
	t.Helper()
	conn, err := amqp091.Dial(testURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// publishPlain publishes ps with a plain amqp091-go channel and waits for the broker's
// confirms.
func publishPlain(t *testing.T, exchange, key string, ps ...amqp091.Publishing) {
	t.Helper()
	ch, err := dial(t).Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	confirms := make([]*amqp091.DeferredConfirmation, 0, len(ps))
	for _, p := range ps {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, key, false, false, p)
		if err != nil {
			t.Fatal(err)
		}
		confirms = append(confirms, dc)
	}
	for i, dc := range confirms {
		if ok, err := dc.WaitContext(ctx); !ok || err != nil {
			t.Fatalf("publish %d not confirmed: %v", i, err)
		}
	}
}

// TestForeignProducer: 1,000 messages of a plain amqp091-go publisher (no Watermill
// header; half with a message-id; headers of every AMQP type; correlation-id and
// content-type properties) are all handled and recorded once as succeeded, under their
// message-id or a hash of their content, with every header as text in the metadata
// (the int32 x-retry-count as "3") and the properties mapped. A lost ack makes
// RabbitMQ deliver the message again, onto the same row.
func TestForeignProducer(t *testing.T) {
	const total = 1000
	topic := testTopic("foreign")
	var (
		nHandled atomic.Int64
		handled  sync.Map
		lost     sync.Map
	)
	b, exchange, key := foreignBus(t, topic, "legacy", func(b *bus.Bus) {
		b.Router().AddMiddleware(func(h message.HandlerFunc) message.HandlerFunc {
			return func(msg *message.Message) ([]*message.Message, error) {
				out, err := h(msg)
				if seq, _ := strconv.Atoi(msg.Metadata.Get("seq")); err == nil && seq%10 == 0 {
					if _, again := lost.LoadOrStore(msg.UUID, true); !again {
						return out, errors.New("simulated lost ack")
					}
				}
				return out, err
			}
		})
		if err := b.Handle("legacy", topic, func(ctx context.Context, msg *message.Message) error {
			if _, again := handled.LoadOrStore(msg.UUID, true); !again {
				nHandled.Add(1)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})

	at := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	ps := make([]amqp091.Publishing, total)
	for i := range ps {
		ps[i] = amqp091.Publishing{
			Headers: amqp091.Table{
				"seq":           strconv.Itoa(i),
				"x-retry-count": int32(3),
				"x-flag":        true,
				"x-ratio":       0.25,
				"x-price":       amqp091.Decimal{Scale: 2, Value: 1999},
				"x-at":          at,
				"x-raw":         []byte("raw"),
				"x-nested":      amqp091.Table{"n": int64(i), "tags": []any{"a", int8(1)}},
			},
			CorrelationId: "corr-" + strconv.Itoa(i),
			ContentType:   "application/json",
			Timestamp:     at,
			Body:          []byte(fmt.Sprintf(`{"n":%d}`, i)),
		}
		if i%2 == 0 {
			ps[i].MessageId = "legacy-" + strconv.Itoa(i)
		}
	}
	publishPlain(t, exchange, key, ps...)

	waitFor(t, 120*time.Second, "every message handled", func() bool { return nHandled.Load() == total })
	var rows []modelevent.ModelEvent
	waitFor(t, 60*time.Second, "every message recorded as succeeded, the lost acks twice", func() bool {
		rows = listAll(t, b.Store(), modelevent.Filter{Topic: topic, Direction: modelevent.Consumed})
		n := 0
		for _, r := range rows {
			if r.Status == modelevent.StatusSucceeded {
				n += r.Attempts
			}
		}
		return n == total+total/10
	})
	if len(rows) != total {
		t.Fatalf("%d consumed rows, want %d", len(rows), total)
	}
	seen := map[string]bool{}
	for _, r := range rows {
		seq, err := strconv.Atoi(r.Metadata["seq"])
		if err != nil || seen[r.MessageUUID] {
			t.Fatalf("row %s: seq %q, or a second row", r.MessageUUID, r.Metadata["seq"])
		}
		seen[r.MessageUUID] = true
		if seq%2 == 0 && r.MessageUUID != "legacy-"+strconv.Itoa(seq) || seq%2 == 1 && !v8.MatchString(r.MessageUUID) {
			t.Fatalf("seq %d has message UUID %q", seq, r.MessageUUID)
		}
		attempts := 1
		if seq%10 == 0 {
			attempts = 2 // its first ack was lost
		}
		if r.Status != modelevent.StatusSucceeded || r.Attempts != attempts {
			t.Fatalf("row %s (seq %d): %s, %d attempts, want succeeded, %d", r.MessageUUID, seq, r.Status, r.Attempts, attempts)
		}
		want := map[string]string{
			"x-retry-count":                  "3",
			"x-flag":                         "true",
			"x-ratio":                        "0.25",
			"x-price":                        "19.99",
			"x-at":                           "2024-03-01T12:00:00Z",
			"x-raw":                          "raw",
			"x-nested":                       fmt.Sprintf(`{"n":%d,"tags":["a",1]}`, seq),
			modelevent.MetadataCorrelationID: "corr-" + strconv.Itoa(seq),
			MetadataContentType:              "application/json",
		}
		for k, v := range want {
			if r.Metadata[k] != v {
				t.Fatalf("row %s metadata %s = %q, want %q (all: %v)", r.MessageUUID, k, r.Metadata[k], v, r.Metadata)
			}
		}
		if _, ok := r.Metadata[MetadataMessageID]; ok {
			t.Fatalf("row %s: message-id in the metadata although it is the UUID", r.MessageUUID)
		}
		if r.CorrelationID != "corr-"+strconv.Itoa(seq) {
			t.Fatalf("row %s: correlation id %q", r.MessageUUID, r.CorrelationID)
		}
	}
}

// TestForeignUndecodable: deliveries whose Watermill UUID header is not a string, or is
// longer than the store keeps, are poisoned with the reason under their message-id;
// the handler never runs on them and the message after them is handled.
func TestForeignUndecodable(t *testing.T) {
	topic := testTopic("undecodable")
	ran := make(chan string, 8)
	b, exchange, key := foreignBus(t, topic, "billing", func(b *bus.Bus) {
		if err := b.Handle("billing", topic, func(ctx context.Context, msg *message.Message) error {
			ran <- string(msg.Payload)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})
	cases := []struct {
		id     string
		uuid   any
		reason string
	}{
		{"bad-int", int32(7), "message UUID is not a string"},
		{"bad-long", strings.Repeat("x", 100), "is 100 bytes long"},
	}
	var ps []amqp091.Publishing
	for _, c := range cases {
		ps = append(ps, amqp091.Publishing{
			MessageId: c.id,
			Headers:   amqp091.Table{wamqp.DefaultMessageUUIDHeaderKey: c.uuid, "x-retry-count": int32(3)},
			Body:      []byte("bad"),
		})
	}
	ps = append(ps, amqp091.Publishing{Body: []byte("good")})
	publishPlain(t, exchange, key, ps...)
	for _, c := range cases {
		var row modelevent.ModelEvent
		waitFor(t, 30*time.Second, "message "+c.id+" poisoned", func() bool {
			rows := listAll(t, b.Store(), modelevent.Filter{MessageUUID: c.id, Direction: modelevent.Consumed})
			if len(rows) == 1 {
				row = rows[0]
			}
			return len(rows) == 1 && row.Status == modelevent.StatusPoisoned
		})
		if !strings.Contains(row.LastError, c.reason) || !strings.Contains(row.LastError, "could not be decoded") {
			t.Errorf("%s poisoned with %q, want the reason %q", c.id, row.LastError, c.reason)
		}
		if row.Metadata["x-retry-count"] != "3" {
			t.Errorf("%s: metadata %v, want x-retry-count 3", c.id, row.Metadata)
		}
	}
	select {
	case p := <-ran:
		if p != "good" {
			t.Fatalf("handler ran on %q", p)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the message after the undecodable ones was not handled")
	}
}

// waitFor polls cond until it holds, failing t after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
