package kafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/bus"
)

// roundTrip publishes one message to a fresh topic and reads it back through a
// subscriber of b.
func roundTrip(t *testing.T, b bus.Backend, prefix string) {
	t.Helper()
	topic := prefix + "." + watermill.NewShortUUID()
	msg := message.NewMessage(watermill.NewUUID(), []byte("hello"))
	if err := b.Publisher().Publish(topic, msg); err != nil {
		t.Fatal(err)
	}
	sub, err := b.Subscriber("roundtrip")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ch, err := sub.Subscribe(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-ch:
		got.Ack()
		if got.UUID != msg.UUID || string(got.Payload) != "hello" {
			t.Fatalf("got %s %q, want %s hello", got.UUID, got.Payload, msg.UUID)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no message")
	}
}
