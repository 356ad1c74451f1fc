package sqlbackend_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	sqlbackend "github.com/go-eventbus/eventbus/backends/sql"
	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/bustest"
)

func openBackend(t *testing.T, s map[string]any) *sqlbackend.Backend {
	t.Helper()
	b, err := bus.OpenBackend(context.Background(), "sql", s, bus.BackendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b.(*sqlbackend.Backend)
}

// TestBacklog: the backlog is every message after the consumer group's acked offset;
// it shrinks as messages are acked and is zero for a topic without a table.
func TestBacklog(t *testing.T) {
	for _, tg := range targets {
		t.Run(tg.driver, func(t *testing.T) {
			t.Parallel()
			b := openBackend(t, settings(tg.driver, tg.dsn(t), "batch_size", 1, "consumer_group_prefix", "app."))
			ctx := context.Background()
			topic := "backlog." + isolatedName()
			if n, err := b.Backlog(ctx, "billing", topic); err != nil || n != 0 {
				t.Fatalf("backlog of a topic without table = %d, %v", n, err)
			}
			for i := 0; i < 5; i++ {
				if err := b.Publisher().Publish(topic, message.NewMessage("", []byte("x"))); err != nil {
					t.Fatal(err)
				}
			}
			if n, err := b.Backlog(ctx, "billing", topic); err != nil || n != 5 {
				t.Fatalf("backlog before any subscription = %d, %v; want 5", n, err)
			}
			sub, err := b.Subscriber("billing")
			if err != nil {
				t.Fatal(err)
			}
			sctx, cancel := context.WithCancel(ctx)
			ch, err := sub.Subscribe(sctx, topic)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 2; i++ {
				select {
				case m := <-ch:
					m.Ack()
				case <-time.After(10 * time.Second):
					t.Fatal("no message")
				}
			}
			// The offset is committed right after the ack, by the subscriber's goroutine.
			var n int64
			bustest.WaitUntil(t, 10*time.Second, "the backlog after acking 2 to be 3", func() bool {
				n, err = b.Backlog(ctx, "billing", topic)
				return err == nil && n == 3
			})
			cancel()
			_ = sub.Close()
			if n, err := b.Backlog(ctx, "shipping", topic); err != nil || n != 5 {
				t.Fatalf("backlog of another consumer = %d, %v; want 5", n, err)
			}
			if g := b.ConsumerGroup("billing"); g != "app.billing" {
				t.Fatalf("consumer group = %q", g)
			}
		})
	}
}

// TestInitializeSchemaOff: with initialize_schema false nothing creates tables; publishing
// to a topic without them fails clearly until InitializeTopic creates them.
func TestInitializeSchemaOff(t *testing.T) {
	for _, tg := range targets {
		t.Run(tg.driver, func(t *testing.T) {
			t.Parallel()
			b := openBackend(t, settings(tg.driver, tg.dsn(t), "initialize_schema", false, "table_prefix", "app_"))
			topic := "manual." + isolatedName()
			err := b.Publisher().Publish(topic, message.NewMessage("", []byte("x")))
			if err == nil || !strings.Contains(err.Error(), "sql: publish \""+topic+"\"") {
				t.Fatalf("publish without tables: %v", err)
			}
			if err := b.InitializeTopic(context.Background(), topic); err != nil {
				t.Fatal(err)
			}
			if err := b.Publisher().Publish(topic, message.NewMessage("", []byte("x"))); err != nil {
				t.Fatal(err)
			}
			if got := b.MessagesTable(topic); got != "app_messages_"+topic {
				t.Fatalf("messages table = %q", got)
			}
			if n, err := b.Backlog(context.Background(), "c", topic); err != nil || n != 1 {
				t.Fatalf("backlog = %d, %v", n, err)
			}
		})
	}
}

// TestLongTopicNames: topics whose table names would pass the 63-byte identifier limit
// get shortened names that still differ.
func TestLongTopicNames(t *testing.T) {
	for _, tg := range targets {
		t.Run(tg.driver, func(t *testing.T) {
			t.Parallel()
			b := openBackend(t, settings(tg.driver, tg.dsn(t)))
			long := strings.Repeat("very.long.topic.name.", 4)
			t1, t2 := long+"one", long+"two"
			if b.MessagesTable(t1) == b.MessagesTable(t2) || len(b.MessagesTable(t1)) > 63 || len(b.OffsetsTable(t2)) > 63 {
				t.Fatalf("tables %q %q %q", b.MessagesTable(t1), b.MessagesTable(t2), b.OffsetsTable(t2))
			}
			sub, err := b.Subscriber("reader")
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			for _, topic := range []string{t1, t2} {
				if err := b.Publisher().Publish(topic, message.NewMessage("", []byte(topic))); err != nil {
					t.Fatal(err)
				}
			}
			for _, topic := range []string{t1, t2} {
				ch, err := sub.Subscribe(context.Background(), topic)
				if err != nil {
					t.Fatal(err)
				}
				select {
				case m := <-ch:
					if string(m.Payload) != topic {
						t.Fatalf("topic %s got %q", topic, m.Payload)
					}
					m.Ack()
				case <-time.After(10 * time.Second):
					t.Fatal("no message")
				}
			}
		})
	}
}
