package nats

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	natsgo "github.com/nats-io/nats.go"
)

// TestNewConsumerGetsOldMessages: messages published before a consumer first
// subscribes are its backlog and are delivered to it (deliver_policy all); a consumer
// with deliver_policy new starts after them. Backlog counts pending and unacked.
func TestNewConsumerGetsOldMessages(t *testing.T) {
	// One subscription, so the messages come in publish order (checked below).
	b := openBackend(t, with(embeddedSettings(t), "subscribers_count", 1))
	topic := "orders.created." + watermill.NewShortUUID()
	for i := 0; i < 3; i++ {
		if err := b.Publisher().Publish(topic, message.NewMessage(watermill.NewUUID(), []byte(fmt.Sprint(i)))); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	if n, err := b.Backlog(ctx, "late", topic); err != nil || n != 3 {
		t.Fatalf("backlog before subscribing = %d, %v; want 3", n, err)
	}
	if n, err := b.Backlog(ctx, "late", "no.such.topic"); err != nil || n != 0 {
		t.Fatalf("backlog of a topic without stream = %d, %v; want 0", n, err)
	}
	sub, err := b.Subscriber("late")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ch, err := sub.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var held []*message.Message
	for i := 0; i < 3; i++ {
		select {
		case m := <-ch:
			if string(m.Payload) != fmt.Sprint(i) {
				t.Fatalf("message %d payload %q, want in order", i, m.Payload)
			}
			if i < 2 {
				m.Ack()
			} else {
				held = append(held, m)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("message %d not delivered", i)
		}
	}
	waitBacklog(t, b, "late", topic, 1) // the third, delivered and not yet acked
	held[0].Ack()
	waitBacklog(t, b, "late", topic, 0)
}

func waitBacklog(t *testing.T, b *Backend, consumer, topic string, want int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := b.Backlog(context.Background(), consumer, topic)
		if err == nil && n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("backlog = %d, %v; want %d", n, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStopKeepsPosition: closing a subscriber keeps its durable, so a new subscriber
// of the same consumer continues after the acked messages (watermill-nats alone would
// delete a consumer it created when unsubscribing).
func TestStopKeepsPosition(t *testing.T) {
	b := openBackend(t, embeddedSettings(t))
	topic := "stop.keep." + watermill.NewShortUUID()
	pub := func(p string) {
		if err := b.Publisher().Publish(topic, message.NewMessage(watermill.NewUUID(), []byte(p))); err != nil {
			t.Fatal(err)
		}
	}
	read := func(want string) {
		sub, err := b.Subscriber("keeper")
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		ch, err := sub.Subscribe(context.Background(), topic)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-ch:
			if string(m.Payload) != want {
				t.Fatalf("got %q, want %q", m.Payload, want)
			}
			m.Ack()
		case <-time.After(10 * time.Second):
			t.Fatalf("%q not delivered", want)
		}
	}
	pub("first")
	read("first")
	pub("second")
	read("second")
}

// TestDeliverPolicyNew: a new consumer with deliver_policy new skips older messages.
func TestDeliverPolicyNew(t *testing.T) {
	b := openBackend(t, with(embeddedSettings(t), "deliver_policy", "new"))
	topic := "new.only." + watermill.NewShortUUID()
	if err := b.Publisher().Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("old"))); err != nil {
		t.Fatal(err)
	}
	sub, err := b.Subscriber("fresh")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ch, err := sub.Subscribe(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publisher().Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("new"))); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-ch:
		if string(m.Payload) != "new" {
			t.Fatalf("got %q, want only the new message", m.Payload)
		}
		m.Ack()
	case <-time.After(10 * time.Second):
		t.Fatal("not delivered")
	}
}

// TestNameCollision: two topics that map to one stream name fail loudly.
func TestNameCollision(t *testing.T) {
	b := openBackend(t, embeddedSettings(t))
	if err := b.Publisher().Publish("a.b", message.NewMessage(watermill.NewUUID(), nil)); err != nil {
		t.Fatal(err)
	}
	err := b.Publisher().Publish("a_b", message.NewMessage(watermill.NewUUID(), nil))
	if err == nil || !strings.Contains(err.Error(), `topic "a_b" maps to stream "a_b", which already holds subjects [a.b]`) {
		t.Fatalf("err = %v", err)
	}
	if err := b.Publisher().Publish("bad topic", message.NewMessage(watermill.NewUUID(), nil)); err == nil || !strings.Contains(err.Error(), "not a valid NATS subject") {
		t.Fatalf("publish to a bad topic: %v", err)
	}
}

// TestNoAutoProvision: without auto_provision a topic needs a stream, and an existing
// stream covering the subject (any name) is used.
func TestNoAutoProvision(t *testing.T) {
	owner := openBackend(t, embeddedSettings(t))
	b := openBackend(t, map[string]any{"url": owner.URL(), "auto_provision": false})
	err := b.Publisher().Publish("shop.orders", message.NewMessage(watermill.NewUUID(), nil))
	if err == nil || !strings.Contains(err.Error(), "auto_provision is false") {
		t.Fatalf("err = %v", err)
	}
	if _, err := owner.js.AddStream(&natsgo.StreamConfig{Name: "SHOP", Subjects: []string{"shop.>"}}); err != nil {
		t.Fatal(err)
	}
	if err := b.Publisher().Publish("shop.orders", message.NewMessage(watermill.NewUUID(), []byte("x"))); err != nil {
		t.Fatal(err)
	}
	if n, err := b.Backlog(context.Background(), "billing", "shop.orders"); err != nil || n != 1 {
		t.Fatalf("backlog = %d, %v", n, err)
	}
}

// TestStreamDeletedIsRecreated: a stream deleted behind the backend's back is created
// again on the next publish (auto_provision).
func TestStreamDeletedIsRecreated(t *testing.T) {
	b := openBackend(t, embeddedSettings(t))
	topic := "deleted." + watermill.NewShortUUID()
	if err := b.Publisher().Publish(topic, message.NewMessage(watermill.NewUUID(), nil)); err != nil {
		t.Fatal(err)
	}
	if err := b.js.DeleteStream(b.cfg.StreamName(topic)); err != nil {
		t.Fatal(err)
	}
	if err := b.Publisher().Publish(topic, message.NewMessage(watermill.NewUUID(), nil)); err != nil {
		t.Fatalf("publish after the stream was deleted: %v", err)
	}
}
