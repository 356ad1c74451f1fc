package amqp

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/bustest"
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
	bustest.Start(t, b, 30*time.Second)
	cfg := b.Backend().(*Backend).Config()
	conn := dial(t)
	queue := cfg.queueName(topic, consumer)
	bustest.WaitUntil(t, 30*time.Second, "queue "+queue+" declared", func() bool {
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
	var handled bustest.Distinct
	b, exchange, key := foreignBus(t, topic, "legacy", func(b *bus.Bus) {
		bustest.LoseFirstAck(b, topic, func(msg *message.Message) bool {
			seq, _ := strconv.Atoi(msg.Metadata.Get("seq"))
			return seq%10 == 0
		})
		if err := b.Handle("legacy", topic, func(ctx context.Context, msg *message.Message) error {
			handled.Add(msg.UUID)
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

	bustest.WaitUntil(t, 120*time.Second, "every message handled", func() bool { return handled.Len() == total })
	consumed := modelevent.Filter{Topic: topic, Direction: modelevent.Consumed}
	rows := bustest.WaitRows(t, 60*time.Second, "every message recorded as succeeded, the lost acks twice", b.Store(), consumed, func(rows []modelevent.ModelEvent) bool {
		return bustest.Attempts(rows, modelevent.StatusSucceeded) == total+total/10
	})
	seqs := make(map[string]int, len(rows)) // message UUID → seq
	for _, r := range rows {
		seq, err := strconv.Atoi(r.Metadata["seq"])
		if err != nil {
			t.Fatalf("row %s: seq %q", r.MessageUUID, r.Metadata["seq"])
		}
		seqs[r.MessageUUID] = seq
	}
	bustest.CheckSucceededOnce(t, rows, total, func(r modelevent.ModelEvent) int {
		if seqs[r.MessageUUID]%10 == 0 {
			return 2 // its first ack was lost
		}
		return 1
	})
	for _, r := range rows {
		seq := seqs[r.MessageUUID]
		if seq%2 == 0 && r.MessageUUID != "legacy-"+strconv.Itoa(seq) || seq%2 == 1 && !v8.MatchString(r.MessageUUID) {
			t.Fatalf("seq %d has message UUID %q", seq, r.MessageUUID)
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
		row := bustest.WaitRows(t, 30*time.Second, "message "+c.id+" poisoned", b.Store(), modelevent.Filter{MessageUUID: c.id, Direction: modelevent.Consumed}, bustest.OneRowIn(modelevent.StatusPoisoned))[0]
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
